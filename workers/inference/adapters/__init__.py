"""Model adapters, chosen by `inference.adapter` in pipeline.toml."""

from __future__ import annotations

from pipeless.workers.inference.adapters.base import Adapter
from pipeless.workers.inference.adapters.blazeface import BlazeFace
from pipeless.workers.inference.adapters.centerface import CenterFace
from pipeless.workers.inference.adapters.raw import Raw
from pipeless.workers.inference.adapters.yolo import Yolo

__all__ = ["Adapter", "get_adapter", "ADAPTERS"]

ADAPTERS: dict[str, type] = {"blazeface": BlazeFace, "centerface": CenterFace, "yolo": Yolo, "raw": Raw}


def get_adapter(name: str) -> Adapter:
    """A fresh adapter instance (adapters may keep per-model state, e.g. output names)."""
    try:
        return ADAPTERS[name]()
    except KeyError:
        raise ValueError(f"unknown adapter {name!r}; expected one of {', '.join(ADAPTERS)}") from None
