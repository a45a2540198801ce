"""What every filter kind (trusted Python, wasm component, wasm core module) looks like to a worker."""

from __future__ import annotations

from typing import Any, Protocol

from pipeless.workers.frame import Frame


class FilterError(Exception):
    """A filter failed on one frame; `kind` says how (trap, deadline, memory, host-call, error)."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


class FilterLoadError(Exception):
    """A filter cannot be built at all (missing file, bad function, invalid component): fatal at start."""


class Filter(Protocol):
    """A stage of the chain.

    `process` changes `frame.image` / `frame.detections` in place and returns
    the filter's own JSON-able output (or None), which lands under
    `data.<name>` in the frame's result. It raises FilterError for a failure
    that should be recorded against this frame only.
    """

    name: str
    stage: str
    stateful: bool

    def process(self, frame: Frame) -> Any: ...

    def close(self) -> None: ...
