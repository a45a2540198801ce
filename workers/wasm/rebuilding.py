"""What both wasm filter kinds share: load the compiled code once, and replace a dead instance.

A trap, a deadline or a memory blow leaves an instance unusable; the next
frame gets a fresh Store and instance with `init` called again. The kinds
differ only in how an instance is made and how wasmtime's errors read.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from wasmtime import WasmtimeError

from pipeless.orchestrator.config import FilterConfig
from pipeless.workers.filters.base import FilterError, FilterLoadError
from pipeless.workers.frame import Frame
from pipeless.workers.wasm import engine


class Instance(Protocol):
    dead: bool

    def init(self, config: dict[str, Any]) -> None: ...

    def process(self, frame: Frame) -> Any: ...

    def close(self) -> None: ...


def last_line(message: str) -> str:
    """The last non-empty line of a wasmtime error: its backtrace comes first, the cause last."""
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else message


class RebuildingFilter:
    """The Filter protocol over one instance at a time; subclasses say how to make one."""

    kind = ""  # "component" or "module": what engine.load compiles
    noun = ""  # for messages: "component", "core module"
    init_label = ""  # the guest's init function, as named in messages
    instance_type: Callable[[FilterConfig, Any], Instance]  # made with (cfg, compiled code)

    def __init__(self, cfg: FilterConfig) -> None:
        if not cfg.path:
            raise FilterLoadError(f"kind {cfg.kind!r} needs path")
        self.name, self.stage, self.stateful, self.cfg = cfg.name, cfg.stage, cfg.stateful, cfg
        try:
            self.compiled = engine.load(cfg.path, self.kind)
        except FileNotFoundError:
            raise FilterLoadError(f"no such file: {cfg.path}") from None
        except WasmtimeError as exc:
            raise FilterLoadError(f"{cfg.path} is not a valid {self.noun}: {last_line(str(exc))}") from None
        self.rebuilds = 0
        self._instance: Instance | None = self._build()

    def _build(self) -> Instance:
        inst = self.instance_type(self.cfg, self.compiled)
        try:
            inst.init(self.cfg.config)
        except FilterError as exc:
            inst.close()
            raise FilterLoadError(f"{self.init_label}: {exc}") from None
        except FilterLoadError:
            inst.close()
            raise
        return inst

    def process(self, frame: Frame) -> Any:
        inst = self._instance
        if inst is None or inst.dead:
            if inst is not None:
                inst.close()
            self._instance = None
            try:
                inst = self._instance = self._build()
                self.rebuilds += 1
            except FilterLoadError as exc:
                raise FilterError(f"cannot rebuild the instance: {exc}", "error") from None
        return inst.process(frame)

    def close(self) -> None:
        if self._instance is not None:
            self._instance.close()
            self._instance = None
