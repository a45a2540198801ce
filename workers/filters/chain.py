"""Runs a stage's filters in order on one frame, containing each filter's failure to that frame."""

from __future__ import annotations

from typing import Any

from pipeless.protocol.messages import FilterFailure
from pipeless.workers.filters.base import Filter, FilterError
from pipeless.workers.frame import Frame


class FilterChain:
    def __init__(self, filters: list[Filter]) -> None:
        self.filters = filters

    def run(self, frame: Frame) -> list[FilterFailure]:
        """Run every filter; a failing one is recorded and skipped, the frame goes on."""
        failures: list[FilterFailure] = []
        for flt in self.filters:
            try:
                out: Any = flt.process(frame)
            except FilterError as exc:
                failures.append(FilterFailure(flt.name, exc.kind, str(exc)))
                continue
            if out is not None:
                frame.data[flt.name] = out
        return failures

    def close(self) -> None:
        for flt in self.filters:
            flt.close()
