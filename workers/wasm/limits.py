"""The per-call deadline: epoch interruption, judged in the worker thread's CPU time.

The engine epoch ticks every engine.TICK_MS of wall time. When a call's epoch
deadline passes, wasmtime calls back here (wasmtime_store_epoch_deadline_callback)
instead of trapping straight away, and the call is stopped only if the thread
has really spent `deadline_ms` of CPU in it (guest code and host operations
alike) or, whatever the CPU, WALL_FACTOR times the deadline of wall time.
Otherwise the deadline is pushed back by the CPU time still owed.

Why: on a loaded machine a worker can be preempted for tens of ms in the
middle of a 0.3 ms call; a pure wall-clock deadline then kills healthy
filters (seen in the bench at load 8 on 2 cores). A runaway guest burns CPU,
so it is still stopped about deadline_ms after it starts.
"""

from __future__ import annotations

import ctypes
import time
from ctypes import c_void_p
from typing import Any

from pipeless.workers.wasm import capi, engine

WALL_FACTOR = 10
_CALLBACK = ctypes.CFUNCTYPE(c_void_p, c_void_p, c_void_p, c_void_p, c_void_p)
_set_callback = capi._fn(
    "wasmtime_store_epoch_deadline_callback", None, c_void_p, _CALLBACK, c_void_p, capi.FINALIZER
)
_NO_FINALIZER = capi.FINALIZER()


class Deadline:
    """Attach to one Store; `arm(ms)` before each call, `hit` tells whether it fired."""

    def __init__(self, store: Any) -> None:
        self.hit = False
        self._budget = 0.0
        self._wall_budget = 0.0
        self._cpu0 = 0.0
        self._wall0 = 0.0
        self._ctx = capi.addr_of(store._context())
        self._cb = _CALLBACK(self._on_deadline)  # kept alive by this object, which the instance keeps
        _set_callback(capi.addr_of(store.ptr()), self._cb, None, _NO_FINALIZER)

    def arm(self, deadline_ms: float) -> None:
        self.hit = False
        self._budget = deadline_ms / 1000.0
        self._wall_budget = self._budget * WALL_FACTOR
        self._cpu0 = time.thread_time()
        self._wall0 = time.perf_counter()
        capi.set_epoch_deadline(self._ctx, engine.deadline_ticks(deadline_ms))

    def _on_deadline(self, ctx: int, data: int, delta: int, kind: int) -> int:
        try:
            cpu = time.thread_time() - self._cpu0
            wall = time.perf_counter() - self._wall0
            if cpu < self._budget and wall < self._wall_budget:
                owed_ms = (self._budget - cpu) * 1000.0
                ctypes.c_uint64.from_address(delta).value = engine.deadline_ticks(owed_ms)
                ctypes.c_uint8.from_address(kind).value = 0  # continue
                return 0
            self.hit = True
            return capi.new_error(
                f"pipeless deadline: interrupt after {cpu * 1000:.0f} ms CPU / {wall * 1000:.0f} ms wall"
            )
        except BaseException as exc:  # never unwind into wasmtime
            self.hit = True
            return capi.new_error(f"pipeless deadline: interrupt ({exc})")
