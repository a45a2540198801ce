"""Builds a Filter from its [[filters]] table, whatever its kind."""

from __future__ import annotations

from pipeless.orchestrator.config import FilterConfig
from pipeless.workers.filters.base import Filter, FilterLoadError
from pipeless.workers.filters.python_filter import PythonFilter


def build_filter(cfg: FilterConfig) -> Filter:
    """Raise FilterLoadError (one line, naming the filter) when it cannot be built."""
    try:
        if cfg.kind == "python":
            assert cfg.function
            return PythonFilter(cfg.name, cfg.stage, cfg.function, cfg.config)
        if cfg.kind == "wasm":
            from pipeless.workers.wasm.component import WasmComponentFilter

            return WasmComponentFilter(cfg)
        if cfg.kind == "wasm-module":
            from pipeless.workers.wasm.module import WasmModuleFilter

            return WasmModuleFilter(cfg)
        raise FilterLoadError(f"kind {cfg.kind!r} is not available in this build")
    except FilterLoadError as exc:
        raise FilterLoadError(f"filter {cfg.name!r}: {exc}") from None
