"""One wasmtime Engine per process, its epoch ticker, and the compiled-code cache.

Compiling a component with Cranelift takes 50-500 ms; a worker restart or an
instance rebuilt after a trap must not pay that again. Compiled code is
therefore cached twice:

* in memory, per process, keyed by the file's SHA-256 (a rebuilt instance
  reuses the same Component / Module object);
* on disk under $PIPELESS_WASM_CACHE (default ~/.cache/pipeless/wasm), as
  wasmtime's serialized artefact, keyed by SHA-256(file) + wasmtime version +
  the engine settings that change code generation. A stale or corrupt entry
  is recompiled and replaced.

Deadlines use epoch interruption: a POSIX timer (no GIL; see
_start_ticker) bumps the engine epoch every TICK_MS, and each call sets its store's deadline to
ceil(deadline_ms / TICK_MS) + 1 ticks ahead, so a runaway guest traps within
about one tick of its deadline.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import struct
import sys
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import wasmtime
from wasmtime import Config, Engine, Module
from wasmtime.component import Component

TICK_MS = 5  # a SIGEV_THREAD timer costs a thread start per tick: ~1% of a core at 5 ms

# Linear memories come from pipeless.workers.wasm.memory (exact, attributable
# cap) unless PIPELESS_WASM_HOST_MEMORY=0, which falls back to the store
# limiter alone (a refused growth then reports as a plain trap).
HOST_MEMORY = os.environ.get("PIPELESS_WASM_HOST_MEMORY", "1") != "0"

# Everything that changes the machine code: part of the on-disk cache key.
ENGINE_SETTINGS = {
    "epoch_interruption": True,
    "cranelift_opt_level": "speed",
    "wasm_component_model": True,
}


def _build_engine() -> Engine:
    cfg = Config()
    cfg.epoch_interruption = ENGINE_SETTINGS["epoch_interruption"]
    cfg.cranelift_opt_level = ENGINE_SETTINGS["cranelift_opt_level"]
    cfg.wasm_component_model = ENGINE_SETTINGS["wasm_component_model"]
    if HOST_MEMORY:
        from pipeless.workers.wasm import memory

        cfg.memory_init_cow = False  # images are copied in; the host owns the pages
        memory.install(cfg)
    return Engine(cfg)


_engine: Engine | None = None
_engine_lock = threading.Lock()


def engine() -> Engine:
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _build_engine()
            _start_ticker(_engine)
        return _engine


def _start_ticker(eng: Engine) -> None:
    """Bump the engine epoch every TICK_MS without ever taking the GIL.

    A Python thread that wakes every few ms must take the GIL; on a loaded
    machine it gets it at the wasm path's many ctypes calls, is then
    preempted while holding it, and the filter stalls (measured: the
    draw_detections ratio went from 1.6x to 2.7x native under load). So on
    Linux a POSIX timer with SIGEV_THREAD calls wasmtime_engine_increment_epoch
    directly (its one pointer argument is the timer's sigval). The Python
    thread remains the fallback elsewhere.
    """
    global _timer
    _timer = _native_ticker(eng)
    if _timer is not None:
        return

    def tick() -> None:
        period = TICK_MS / 1000.0
        while True:
            time.sleep(period)
            eng.increment_epoch()

    threading.Thread(target=tick, name="pipeless-wasm-epoch", daemon=True).start()


_timer: "ctypes.c_void_p | None" = None


def _native_ticker(eng: Engine) -> "ctypes.c_void_p | None":
    if sys.platform != "linux" or os.environ.get("PIPELESS_WASM_PY_TICKER") == "1":
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        timer_create, timer_settime, timer_delete = libc.timer_create, libc.timer_settime, libc.timer_delete
    except (OSError, AttributeError):
        return None
    from wasmtime import _ffi as ffi

    func = ctypes.cast(ffi.dll.wasmtime_engine_increment_epoch, ctypes.c_void_p).value
    engine_ptr = ctypes.cast(eng.ptr(), ctypes.c_void_p).value
    # struct sigevent (glibc, 64-bit): sigval @0, signo @8, notify @12, function @16, attributes @24
    sev = ctypes.create_string_buffer(struct.pack("<QiiQQ", engine_ptr, 0, 2, func, 0), 64)  # SIGEV_THREAD = 2
    timer = ctypes.c_void_p()
    timer_create.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    if timer_create(1, sev, ctypes.byref(timer)) != 0:  # CLOCK_MONOTONIC
        return None
    ns = TICK_MS * 1_000_000
    spec = struct.pack("<qqqq", 0, ns, 0, ns)  # it_interval, it_value
    timer_settime.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p]
    if timer_settime(timer, 0, spec, None) != 0:
        timer_delete.argtypes = [ctypes.c_void_p]
        timer_delete(timer)
        return None
    timer_delete.argtypes = [ctypes.c_void_p]
    # The timer must stop before the engine can be freed at exit.
    atexit.register(timer_delete, timer)
    return timer


def _after_fork_in_child() -> None:
    """Timers and threads do not survive fork: a child builds its own engine and ticker."""
    global _engine, _timer
    _engine = None
    _timer = None
    _memory_cache.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def deadline_ticks(deadline_ms: float) -> int:
    return int(-(-deadline_ms // TICK_MS)) + 1


def cache_dir() -> Path:
    env = os.environ.get("PIPELESS_WASM_CACHE")
    if env:
        return Path(env)
    return Path(os.path.expanduser("~")) / ".cache" / "pipeless" / "wasm"


def _settings_tag() -> str:
    items = ",".join(f"{k}={v}" for k, v in sorted(ENGINE_SETTINGS.items())) + f",host_memory={HOST_MEMORY}"
    version = getattr(wasmtime, "__version__", "") or _wasmtime_version()
    return f"wasmtime={version};{items}"


def _wasmtime_version() -> str:
    try:
        from importlib.metadata import version

        return version("wasmtime")
    except Exception:  # pragma: no cover - metadata missing
        return "unknown"


@dataclass
class Compiled:
    """A compiled component or module and where it came from."""

    code: Component | Module
    sha256: str
    cache_file: Path | None
    source: str  # "memory", "disk" or "compiled"


_memory_cache: dict[tuple[str, str], Compiled] = {}
stats = {"compiled": 0, "disk": 0, "memory": 0}


def cache_key(data: bytes, kind: str) -> str:
    h = hashlib.sha256()
    h.update(kind.encode() + b"\0" + _settings_tag().encode() + b"\0")
    h.update(data)
    return h.hexdigest()


def load(path: str | os.PathLike[str], kind: str) -> Compiled:
    """Compile (or fetch from cache) a component (kind='component') or core module (kind='module')."""
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    hit = _memory_cache.get((kind, digest))
    if hit is not None:
        stats["memory"] += 1
        return Compiled(hit.code, digest, hit.cache_file, "memory")
    eng = engine()
    cls = Component if kind == "component" else Module
    key = cache_key(data, kind)
    cdir = cache_dir()
    cfile = cdir / f"{key}.{'cwasm' if kind == 'component' else 'cwasm-module'}"
    code = None
    source = "compiled"
    if cfile.is_file():
        try:
            code = cls.deserialize_file(eng, str(cfile))
            source = "disk"
        except Exception:
            code = None  # incompatible or corrupt: recompile below
    if code is None:
        code = cls(eng, data)
        try:
            cdir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cdir, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(code.serialize())
            os.replace(tmp, cfile)
        except OSError:
            cfile = None  # read-only home: run without the disk cache
    stats[source] += 1
    compiled = Compiled(code, digest, cfile, source)
    _memory_cache[(kind, digest)] = compiled
    return compiled


def forget_memory_cache() -> None:
    """Drop the in-process cache (tests use it to exercise the disk cache)."""
    _memory_cache.clear()
