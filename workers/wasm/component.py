"""The `wasm` filter kind: a component of the pipeless:filter world, one Store per instance.

Host functions are registered straight through the C API (capi.py) with
readers/writers compiled from schema.py, and `process` is called with a
prebuilt argument array: one crossing in, one per host operation, no Python
objects built for values that are not used. The frame borrow handed to the
guest is created once per instance and reused; the guest must drop it before
returning (wasmtime traps otherwise, which is reported and the instance is
rebuilt, so a guest that keeps it cannot wedge the host).
"""

from __future__ import annotations

import ctypes
import json
import struct
from typing import Any, Callable

from wasmtime import Store, WasiConfig, WasmtimeError
from wasmtime.component import Linker, ResourceType

from pipeless.orchestrator.config import FilterConfig
from pipeless.workers.filters.base import FilterError, FilterLoadError
from pipeless.workers.frame import Frame
from pipeless.workers.wasm import calls, capi, engine, limits, memory, ops, schema, vals
from pipeless.workers.wasm.calls import CallContext
from pipeless.workers.wasm.ops import HostCallError
from pipeless.workers.wasm.rebuilding import RebuildingFilter, last_line

FRAME_RESOURCE_ID = 0x5049_4652  # "PIFR": the host resource type of `frame`
FRAME_REP = 1

# ------------------------------------------------------------------ host functions
# impl(ctx, *args) for each schema import; the frame borrow is not passed.


def _frame(ctx: CallContext) -> Frame:
    if ctx.frame is None:
        raise HostCallError("no frame outside process")
    return ctx.frame


def _info(ctx: CallContext) -> tuple:
    f = _frame(ctx)
    return (f.width, f.height, 3, f.stream, f.index, float(f.pts), f.model_input is not None and f.tensor is not None)


IMPLS: dict[str, Callable[..., Any]] = {
    "[method]frame.width": lambda c: _frame(c).width,
    "[method]frame.height": lambda c: _frame(c).height,
    "[method]frame.channels": lambda c: 3,
    "[method]frame.stream-id": lambda c: _frame(c).stream,
    "[method]frame.index": lambda c: _frame(c).index,
    "[method]frame.pts": lambda c: float(_frame(c).pts),
    "[method]frame.info": _info,
    "[method]frame.prepare-input": lambda c, region: ops.prepare_input(_frame(c), region),
    "[method]frame.convert-color": lambda c, region, conv: ops.convert_color(_frame(c).image, region, conv),
    "[method]frame.blur": lambda c, regions, k: ops.blur(_frame(c).image, regions, k),
    "[method]frame.pixelate": lambda c, regions, b: ops.pixelate(_frame(c).image, regions, b),
    "[method]frame.fill": lambda c, regions, color: ops.fill(_frame(c).image, regions, color),
    "[method]frame.copy-region": lambda c, src, dst: ops.copy_region(_frame(c).image, src, dst),
    "[method]frame.draw-boxes": lambda c, boxes: ops.draw_boxes(_frame(c).image, boxes),
    "[method]frame.draw-lines": lambda c, lines: ops.draw_lines(_frame(c).image, lines),
    "[method]frame.draw-circles": lambda c, circles: ops.draw_circles(_frame(c).image, circles),
    "[method]frame.draw-texts": lambda c, texts: ops.draw_texts(_frame(c).image, texts),
    "[method]frame.read-region": lambda c, region: ops.read_region(_frame(c).image, region),
    "[method]frame.write-region": lambda c, region, px: ops.write_region(_frame(c).image, region, px),
    "get-detections": lambda c: ops.detections_out(_frame(c).detections),
    "set-detections": lambda c, items: setattr(_frame(c), "detections", ops.detections_in(items)),
    "emit": calls.do_emit,
    "log": calls.do_log,
}

_KEEP: list[Any] = []  # ctypes callbacks must outlive the linker


def _host_callback(func: schema.Func, impl: Callable[..., Any]) -> Any:
    read_args, borrows = vals.args_reader([t for _, t in func.params])
    put_result = vals.writer(func.result) if func.result is not None else None
    drop = capi.resource_any_drop
    current = calls.current
    take_error = capi.take_error

    def callback(env: int, ctx_ptr: int, ty: int, args: int, nargs: int, results: int, nresults: int) -> int:
        ctx = None
        try:
            ctx = current()
            values = read_args(args)
            for i in borrows:  # every borrow received must be given back
                err = drop(ctx_ptr, values[i])
                if err:
                    raise HostCallError(take_error(err))
            if borrows:
                values = [v for i, v in enumerate(values) if i not in borrows]
            out = impl(ctx, *values)
            if put_result is not None:
                put_result(results, out)
            return 0
        except BaseException as exc:  # nothing may unwind through the C frame
            msg = f"{func.name}: {exc}" if isinstance(exc, HostCallError) else f"{func.name}: {type(exc).__name__}: {exc}"
            if ctx is not None and ctx.host_error is None:
                ctx.host_error = msg
            return capi.new_error("pipeless host-call error: " + msg)

    cb = capi.HOST_FUNC(callback)
    _KEEP.append(cb)
    return cb


_NO_FINALIZER = capi.FINALIZER()


def _add_func(li: Any, name: str, cb: Any) -> None:
    b = name.encode()
    err = capi.linker_instance_add_func(capi.addr_of(li.ptr()), b, len(b), cb, None, _NO_FINALIZER)
    if err:
        raise FilterLoadError(f"cannot define host function {name}: {capi.take_error(err)}")


_linkers: dict[tuple[int, bool], Linker] = {}


def linker(wasi: bool) -> Linker:
    """The engine's linker with every host import (and WASI p2 when a filter is granted it)."""
    eng = engine.engine()  # a new one after fork: linkers are per engine
    key = (id(eng), wasi)
    if key in _linkers:
        return _linkers[key]
    _linkers.clear()
    lk = Linker(eng)
    if wasi:
        lk.add_wasip2()
    with lk.root() as root:
        for name in schema.TYPE_ONLY_IMPORTS:
            with root.add_instance(name):
                pass
        for iname, funcs in schema.IMPORTS.items():
            with root.add_instance(iname) as li:
                for res in schema.RESOURCES.get(iname, ()):
                    li.add_resource(res, ResourceType.host(FRAME_RESOURCE_ID), lambda store, rep: None)
                for func in funcs:
                    _add_func(li, func.name, _host_callback(func, IMPLS[func.name]))
    _linkers[key] = lk
    return lk


# ------------------------------------------------------------------ WASI grants

GRANTS = ("stdout", "stderr", "env", "args")


def wasi_config(allow: list[str]) -> WasiConfig | None:
    """`allow` -> a WasiConfig granting only those capabilities (None: no WASI at all).

    Grants: stdout, stderr, env (the worker's environment), and
    "dir:HOST_PATH[:GUEST_PATH]" (read-only preopen). Anything else is a load error.
    """
    if not allow:
        return None
    cfg = WasiConfig()
    for grant in allow:
        if grant == "stdout":
            cfg.inherit_stdout()
        elif grant == "stderr":
            cfg.inherit_stderr()
        elif grant == "env":
            cfg.inherit_env()
        elif grant == "args":
            cfg.argv = ["filter"]
        elif grant.startswith("dir:"):
            host, _, guest = grant[4:].partition(":")
            cfg.preopen_dir(host, guest or host, fs_mutable=False)
        else:
            raise FilterLoadError(f"unknown WASI grant {grant!r} (known: {', '.join(GRANTS)}, dir:PATH)")
    return cfg


# ------------------------------------------------------------------ one instance

_PROCESS_RESULT = vals.reader(schema.EXPORTS[1].result)  # type: ignore[arg-type]
_INIT_RESULT = vals.reader(schema.EXPORTS[0].result)  # type: ignore[arg-type]
_PUT_STRING = vals.writer(schema.STRING)
_BORROW_VAL = struct.Struct("<B7xQ16x")


class ComponentInstance:
    """A Store, an instance in it, and the lean call path to its exports."""

    def __init__(self, cfg: FilterConfig, compiled: engine.Compiled) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.dead = False
        self.memory_cap = cfg.memory_mb * 1024 * 1024
        wasi = wasi_config(cfg.allow)
        self.store = Store(engine.engine())
        self.account = memory.MemoryAccount(self.memory_cap)
        if engine.HOST_MEMORY:
            # The cap is enforced (and refusals recorded) by memory.py; the
            # limiter still bounds instances, tables and memories.
            self.store.set_limits(instances=64, tables=64, memories=16)
        else:
            self.store.set_limits(memory_size=self.memory_cap, instances=64, tables=64, memories=16)
        if wasi is not None:
            self.store.set_wasi(wasi)
        self._deadline_ms = float(cfg.deadline_ms)
        self.deadline = limits.Deadline(self.store)
        self.deadline.arm(self._deadline_ms * 20)  # instantiation and init get a longer leash
        lk = linker(wasi is not None)
        prev = memory.enter(self.account)
        try:
            self.instance = lk.instantiate(self.store, compiled.code)
        except WasmtimeError as exc:
            raise FilterLoadError(f"cannot instantiate {cfg.path}: {last_line(str(exc))}") from None
        finally:
            memory.enter(prev)
        self._ctx_ptr = capi.addr_of(self.store._context())
        self._init = self._export("init")
        self._process = self._export("process")
        # The frame borrow: made once, passed by value to every process call.
        host = capi.resource_host_new(False, FRAME_REP, FRAME_RESOURCE_ID)
        out = (ctypes.c_void_p * 1)()
        err = capi.resource_host_to_any(self._ctx_ptr, host, ctypes.addressof(out))
        capi.resource_host_delete(host)
        if err:
            raise FilterLoadError(f"cannot make the frame borrow: {capi.take_error(err)}")
        self._borrow_any = out[0]
        self._params = ctypes.create_string_buffer(_BORROW_VAL.pack(capi.K_RESOURCE, out[0]), capi.VAL_SIZE)
        self._params_addr = ctypes.addressof(self._params)
        self._result = ctypes.create_string_buffer(capi.VAL_SIZE)
        self._result_addr = ctypes.addressof(self._result)

    def _export(self, name: str) -> Any:
        func = self.instance.get_func(self.store, name)
        if func is None:
            raise FilterLoadError(f"{self.cfg.path} does not export `{name}` (not a pipeless:filter/filter component)")
        return func

    def _call(self, func: Any, params_addr: int, ctx: CallContext, deadline_ms: float) -> Any:
        """Call an export with one argument already at params_addr; return its decoded result."""
        fptr = ctypes.addressof(func._func)
        self.deadline.arm(deadline_ms)
        self.account.denied = False
        prev = calls.enter(ctx)
        try:
            err = capi.func_call(fptr, self._ctx_ptr, params_addr, 1, self._result_addr, 1)
        finally:
            calls.enter(prev)
        if err:
            failure = calls.classify(capi.take_error(err), ctx, self._memory_hit(), self.deadline.hit)
            self.close()  # a trapped instance is dead: free its memory now, not at the next gc
            raise failure
        return self._result_addr

    def _post(self, func: Any) -> None:
        err = capi.func_post_return(ctypes.addressof(func._func), self._ctx_ptr)
        if err:
            self.dead = True
            raise FilterError(f"post-return failed: {last_line(capi.take_error(err))}", "trap")

    def _memory_hit(self) -> bool:
        return self.account.denied

    def init(self, config: dict[str, Any]) -> None:
        ctx = CallContext(self.name)
        params = ctypes.create_string_buffer(capi.VAL_SIZE)
        addr = ctypes.addressof(params)
        _PUT_STRING(addr, json.dumps(config, default=str))
        try:
            res = self._call(self._init, addr, ctx, self._deadline_ms * 20)
        finally:
            capi.val_delete(addr)
        ok, err = _INIT_RESULT(res)
        _release(res)
        self._post(self._init)
        if not ok:
            raise FilterLoadError(f"init failed: {err}")

    def process(self, frame: Frame) -> Any:
        ctx = CallContext(self.name, frame)
        res = self._call(self._process, self._params_addr, ctx, self._deadline_ms)
        ok, err = _PROCESS_RESULT(res)
        _release(res)
        self._post(self._process)
        if not ok:
            case, message = err
            if case == "fatal":
                self.dead = True
            raise FilterError(f"{case}: {message}", "error")
        return ctx.emitted()

    def close(self) -> None:
        if self._borrow_any:
            capi.resource_any_delete(self._borrow_any)
            self._borrow_any = 0
        self.dead = True
        # Drop the Store (and with it the linear memories) by refcount, even if
        # something (a traceback) still holds this object.
        self.instance = None
        self.store = None  # type: ignore[assignment]
        self._init = self._process = None


_ZERO_VAL = bytes(capi.VAL_SIZE)


def _release(addr: int) -> None:
    """Free a result value and leave a plain `false` behind: wasmtime drops what
    the result slot holds before writing the next result into it."""
    capi.val_delete(addr)
    ctypes.memmove(addr, _ZERO_VAL, capi.VAL_SIZE)


class WasmComponentFilter(RebuildingFilter):
    """Filter protocol over a component; a failed instance is rebuilt for the next frame."""

    kind = "component"
    noun = "component"
    init_label = "init"
    instance_type = ComponentInstance
