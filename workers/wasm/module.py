"""The `wasm-module` filter kind: a plain core wasm module with a small import ABI.

For languages without component tooling (hand-written WAT, AssemblyScript,
TinyGo, Zig, C with just a compiler). The ABI is documented in
docs/wasm-abi.md; it passes only i32/i64/f64 scalars and pointers into the
module's exported `memory`, and offers an opt-in whole-frame copy into
linear memory for per-pixel code. Same sandbox as components: one Store per
instance, epoch deadline per call, memory cap, no WASI unless `allow`
grants it, failed instance rebuilt for the next frame.
"""

from __future__ import annotations

import ctypes
import json
import struct
from typing import Any, Callable

import numpy as np
from wasmtime import FuncType, Linker, Store, ValType, WasmtimeError

from pipeless.orchestrator.config import FilterConfig
from pipeless.workers.filters.base import FilterError, FilterLoadError
from pipeless.workers.frame import Frame
from pipeless.workers.wasm import calls, engine, limits, memory, ops
from pipeless.workers.wasm.calls import CallContext
from pipeless.workers.wasm.component import wasi_config
from pipeless.workers.wasm.ops import HostCallError
from pipeless.workers.wasm.rebuilding import RebuildingFilter, last_line

MODULE = "pipeless"
I32, I64, F64 = ValType.i32(), ValType.i64(), ValType.f64()

DETECTION_REC = struct.Struct("<5f")  # x1 y1 x2 y2 score
RECT_REC = struct.Struct("<4i")
BOX_REC = struct.Struct("<4iIiII")  # x y w h rgb thickness label_ptr label_len
FRAME_INFO = struct.Struct("<4IQd")  # width height channels 0 index pts
MAX_ITEMS = 4096


class _Mem:
    """Bounds-checked access to the current instance's linear memory."""

    def __init__(self, store: Store, mem: Any) -> None:
        self.store, self.mem = store, mem

    def _base(self, ptr: int, n: int) -> int:
        size = self.mem.data_len(self.store)
        if ptr < 0 or n < 0 or ptr + n > size:
            raise HostCallError(f"pointer {ptr}+{n} outside linear memory ({size} bytes)")
        return ctypes.addressof(self.mem.data_ptr(self.store).contents) + ptr

    def read(self, ptr: int, n: int) -> bytes:
        return ctypes.string_at(self._base(ptr, n), n) if n else b""

    def write(self, ptr: int, data: bytes | np.ndarray) -> None:
        n = len(data) if isinstance(data, bytes) else data.nbytes
        addr = self._base(ptr, n)
        if n:
            ctypes.memmove(addr, data if isinstance(data, bytes) else data.ctypes.data, n)

    def view(self, ptr: int, n: int) -> np.ndarray:
        addr = self._base(ptr, n)
        return np.ctypeslib.as_array((ctypes.c_uint8 * n).from_address(addr))


def _ctx() -> tuple[CallContext, _Mem]:
    ctx = calls.current()
    if ctx.frame is None and not getattr(ctx, "allow_no_frame", False):
        raise HostCallError("frame functions are only available during pl_process")
    return ctx, ctx.mem  # type: ignore[attr-defined]


def _frame() -> tuple[Frame, _Mem]:
    ctx, mem = _ctx()
    if ctx.frame is None:
        raise HostCallError("no frame outside pl_process")
    return ctx.frame, mem


def _count(n: int) -> int:
    if not 0 <= n <= MAX_ITEMS:
        raise HostCallError(f"count {n} out of range 0..{MAX_ITEMS}")
    return n


def _rgb(v: int) -> tuple[int, int, int]:
    return ((v >> 16) & 255, (v >> 8) & 255, v & 255)


def _rects(mem: _Mem, ptr: int, n: int) -> list[tuple[int, int, int, int]]:
    raw = mem.read(ptr, RECT_REC.size * _count(n))
    return [tuple(r) for r in RECT_REC.iter_unpack(raw)]  # type: ignore[misc]


def h_frame_info(out: int) -> None:
    f, mem = _frame()
    mem.write(out, FRAME_INFO.pack(f.width, f.height, 3, 0, f.index, float(f.pts)))


def h_detections_count() -> int:
    f, _ = _frame()
    return len(f.detections)


def h_detections_get(out: int, cap: int) -> int:
    f, mem = _frame()
    dets = ops.detections_out(f.detections)[: _count(cap)]
    mem.write(out, b"".join(DETECTION_REC.pack(*box, score) for _, score, box in dets))
    return len(dets)


def h_detection_label(i: int, out: int, cap: int) -> int:
    f, mem = _frame()
    if not 0 <= i < len(f.detections):
        raise HostCallError(f"detection index {i} out of range 0..{len(f.detections) - 1}")
    b = f.detections[i].label.encode()
    mem.write(out, b[: max(cap, 0)])
    return len(b)


def h_detections_set(recs: int, n: int, labels: int, labels_len: int) -> None:
    f, mem = _frame()
    raw = mem.read(recs, DETECTION_REC.size * _count(n))
    names = mem.read(labels, labels_len).decode("utf-8").split("\n") if n else []
    if len(names) != n:
        raise HostCallError(f"detections_set: {n} records but {len(names)} labels")
    f.detections = ops.detections_in(
        [(name, r[4], r[:4]) for name, r in zip(names, DETECTION_REC.iter_unpack(raw))]
    )


def h_blur(rects: int, n: int, kernel: int) -> None:
    f, mem = _frame()
    ops.blur(f.image, _rects(mem, rects, n), kernel)


def h_pixelate(rects: int, n: int, block: int) -> None:
    f, mem = _frame()
    ops.pixelate(f.image, _rects(mem, rects, n), block)


def h_fill(rects: int, n: int, rgb: int) -> None:
    f, mem = _frame()
    ops.fill(f.image, _rects(mem, rects, n), _rgb(rgb))


def h_draw_boxes(boxes: int, n: int) -> None:
    f, mem = _frame()
    raw = mem.read(boxes, BOX_REC.size * _count(n))
    shapes = []
    for x, y, w, h, rgb, t, lp, ll in BOX_REC.iter_unpack(raw):
        shapes.append(((x, y, w, h), _rgb(rgb), t, mem.read(lp, ll).decode("utf-8") if ll else ""))
    ops.draw_boxes(f.image, shapes)


def h_frame_copy_in(out: int, cap: int) -> int:
    """Opt-in: the whole frame (H x W x 3 BGR, row by row) copied into linear memory."""
    f, mem = _frame()
    need = f.image.size
    if cap >= need:
        mem.view(out, need)[:] = np.ascontiguousarray(f.image).reshape(-1)
    return need


def h_frame_copy_out(src: int, n: int) -> None:
    f, mem = _frame()
    if n != f.image.size:
        raise HostCallError(f"frame_copy_out: expected {f.image.size} bytes, got {n}")
    f.image[...] = mem.view(src, n).reshape(f.image.shape)


def h_emit(ptr: int, n: int) -> None:
    ctx, mem = _ctx()
    calls.do_emit(ctx, mem.read(ptr, n).decode("utf-8"))


def h_log(level: int, ptr: int, n: int) -> None:
    ctx, mem = _ctx()
    if not 0 <= level <= 4:
        raise HostCallError(f"log level {level} out of range 0..4")
    calls.do_log(ctx, level, mem.read(ptr, min(n, calls.LOG_MAX)).decode("utf-8", "replace"))


def h_set_error(ptr: int, n: int) -> None:
    ctx, mem = _ctx()
    ctx.guest_error = mem.read(ptr, min(n, calls.LOG_MAX)).decode("utf-8", "replace")  # type: ignore[attr-defined]


# name -> (params, results, implementation): the ABI, as docs/wasm-abi.md lists it.
IMPORTS: dict[str, tuple[list[ValType], list[ValType], Callable[..., Any]]] = {
    "frame_info": ([I32], [], h_frame_info),
    "detections_count": ([], [I32], h_detections_count),
    "detections_get": ([I32, I32], [I32], h_detections_get),
    "detection_label": ([I32, I32, I32], [I32], h_detection_label),
    "detections_set": ([I32, I32, I32, I32], [], h_detections_set),
    "blur": ([I32, I32, I32], [], h_blur),
    "pixelate": ([I32, I32, I32], [], h_pixelate),
    "fill": ([I32, I32, I32], [], h_fill),
    "draw_boxes": ([I32, I32], [], h_draw_boxes),
    "frame_copy_in": ([I32, I32], [I32], h_frame_copy_in),
    "frame_copy_out": ([I32, I32], [], h_frame_copy_out),
    "emit": ([I32, I32], [], h_emit),
    "log": ([I32, I32, I32], [], h_log),
    "set_error": ([I32, I32], [], h_set_error),
}


def _guarded(name: str, impl: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        try:
            return impl(*args)
        except Exception as exc:
            ctx = calls.current()
            msg = f"{name}: {exc}" if isinstance(exc, HostCallError) else f"{name}: {type(exc).__name__}: {exc}"
            if ctx.host_error is None:
                ctx.host_error = msg
            raise
    return call


_linkers: dict[tuple[int, bool], Linker] = {}


def linker(wasi: bool) -> Linker:
    eng = engine.engine()  # a new one after fork: linkers are per engine
    key = (id(eng), wasi)
    if key in _linkers:
        return _linkers[key]
    _linkers.clear()
    lk = Linker(eng)
    if wasi:
        lk.define_wasi()
    for name, (params, results, impl) in IMPORTS.items():
        lk.define_func(MODULE, name, FuncType(params, results), _guarded(name, impl))
    _linkers[key] = lk
    return lk


class ModuleInstance:
    def __init__(self, cfg: FilterConfig, compiled: engine.Compiled) -> None:
        self.cfg = cfg
        self.dead = False
        self.account = memory.MemoryAccount(cfg.memory_mb * 1024 * 1024)
        self.store = Store(engine.engine())
        if engine.HOST_MEMORY:
            self.store.set_limits(instances=16, tables=16, memories=4)
        else:
            self.store.set_limits(memory_size=self.account.cap, instances=16, tables=16, memories=4)
        wasi = wasi_config(cfg.allow)
        if wasi is not None:
            self.store.set_wasi(wasi)
        self.deadline_ms = float(cfg.deadline_ms)
        self.deadline = limits.Deadline(self.store)
        self.deadline.arm(self.deadline_ms * 20)
        prev = memory.enter(self.account)
        try:
            self.instance = linker(wasi is not None).instantiate(self.store, compiled.code)
        except WasmtimeError as exc:
            raise FilterLoadError(f"cannot instantiate {cfg.path}: {last_line(str(exc))}") from None
        finally:
            memory.enter(prev)
        exports = self.instance.exports(self.store)
        self.mem = exports.get("memory")
        self.process_fn = exports.get("pl_process")
        if self.mem is None or self.process_fn is None:
            raise FilterLoadError(f"{cfg.path} must export `memory` and `pl_process` (see docs/wasm-abi.md)")
        self.init_fn = exports.get("pl_init")
        self.alloc_fn = exports.get("pl_alloc")

    def _call(self, fn: Any, args: tuple, ctx: CallContext, deadline_ms: float) -> Any:
        ctx.mem = _Mem(self.store, self.mem)  # type: ignore[attr-defined]
        ctx.guest_error = ""  # type: ignore[attr-defined]
        self.deadline.arm(deadline_ms)
        self.account.denied = False
        prev = calls.enter(ctx)
        try:
            return fn(self.store, *args)
        except Exception as exc:  # Trap, WasmtimeError, or the host's own exception re-raised
            failure = calls.classify(str(exc), ctx, self.account.denied, self.deadline.hit)
            self.close()
            raise failure from None
        finally:
            calls.enter(prev)

    def init(self, config: dict[str, Any]) -> None:
        if self.init_fn is None:
            return
        data = json.dumps(config, default=str).encode()
        ctx = CallContext(self.cfg.name)
        ctx.allow_no_frame = True  # type: ignore[attr-defined]
        ptr = 0
        if self.alloc_fn is not None:
            ptr = self._call(self.alloc_fn, (len(data),), ctx, self.deadline_ms * 20)
            _Mem(self.store, self.mem).write(ptr, data)
        rc = self._call(self.init_fn, (ptr, len(data) if ptr else 0), ctx, self.deadline_ms * 20)
        if rc != 0:
            raise FilterLoadError(f"pl_init returned {rc}: {ctx.guest_error or 'no message'}")  # type: ignore[attr-defined]

    def close(self) -> None:
        """A dead instance frees its Store (and linear memory) at once."""
        self.dead = True
        self.instance = self.mem = self.process_fn = self.init_fn = self.alloc_fn = None
        self.store = None  # type: ignore[assignment]

    def process(self, frame: Frame) -> Any:
        ctx = CallContext(self.cfg.name, frame)
        rc = self._call(self.process_fn, (), ctx, self.deadline_ms)
        if rc == 0:
            return ctx.emitted()
        msg = ctx.guest_error or f"pl_process returned {rc}"  # type: ignore[attr-defined]
        if rc == 2:
            self.dead = True
            raise FilterError(f"fatal: {msg}", "error")
        raise FilterError(f"failed: {msg}", "error")


class WasmModuleFilter(RebuildingFilter):
    """Filter protocol over a core module; a failed instance is rebuilt for the next frame."""

    kind = "module"
    noun = "core module"
    init_label = "pl_init"
    instance_type = ModuleInstance
