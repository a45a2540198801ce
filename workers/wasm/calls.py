"""Per-call context shared by the host functions, and failure classification.

A host function never gets the frame from the guest: the frame is the one
the current `process` call is about (the guest only ever holds a borrow of
it), so the host functions read it from this thread's current CallContext.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from pipeless.workers.filters.base import FilterError

log = logging.getLogger("pipeless.wasm")

EMIT_MAX = 1 << 20
LOG_MAX = 4096
_NOTHING = object()


@dataclass
class CallContext:
    filter_name: str
    frame: Any = None  # pipeless.workers.frame.Frame during process, None during init
    output: Any = _NOTHING
    host_error: str | None = None
    logs: list[tuple[str, str]] = field(default_factory=list)

    def emitted(self) -> Any:
        return None if self.output is _NOTHING else self.output


_tls = threading.local()


def current() -> CallContext:
    ctx = getattr(_tls, "ctx", None)
    if ctx is None:
        raise RuntimeError("host function called outside a filter call")
    return ctx


def enter(ctx: CallContext | None) -> CallContext | None:
    prev = getattr(_tls, "ctx", None)
    _tls.ctx = ctx
    return prev


LEVELS = ("trace", "debug", "info", "warn", "error")
_PY_LEVEL = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}


def do_emit(ctx: CallContext, text: str) -> None:
    from pipeless.workers.wasm.ops import HostCallError

    if ctx.frame is None:
        raise HostCallError("emit is only allowed during process")
    if len(text) > EMIT_MAX:
        raise HostCallError(f"emit of {len(text)} bytes: at most {EMIT_MAX}")
    try:
        ctx.output = json.loads(text)
    except ValueError as exc:
        raise HostCallError(f"emit: not JSON: {exc}") from None


def do_log(ctx: CallContext, level: int, message: str) -> None:
    message = message[:LOG_MAX]
    ctx.logs.append((LEVELS[level], message))
    log.log(_PY_LEVEL.get(level, logging.INFO), "[%s] %s", ctx.filter_name, message)


def classify(message: str, ctx: CallContext, memory_hit: bool, deadline_hit: bool = False) -> FilterError:
    """A failed call -> FilterError with kind host-call / memory / deadline / trap.

    A refused memory growth wins over a later trap or timeout: it is the cause.
    """
    first = message.strip().splitlines()[-1].strip() if message.strip() else message
    if ctx.host_error is not None:
        return FilterError(f"host call rejected: {ctx.host_error}", "host-call")
    if memory_hit:
        return FilterError(f"memory cap reached: {first}", "memory")
    if deadline_hit or "wasm trap: interrupt" in message:
        return FilterError(f"deadline exceeded (epoch interruption): {first}", "deadline")
    return FilterError(f"trap: {first}", "trap")
