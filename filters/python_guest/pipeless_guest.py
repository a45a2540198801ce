"""Helpers shared by the shipped Python guest filters (bundled into each component).

They mirror filters/c/pipeless.h exactly, so a Python filter turns a
detection box into the same integer rectangle, bit for bit, as the C and
Rust ones: the pixels the host then changes are identical.
"""

from __future__ import annotations

import json
import math
from typing import Any

from wit_world.imports.types import Box, Rect

_LIMIT = 16777216


def f2i(v: float) -> int:
    """One box edge -> a pixel coordinate: clamp to +-16777216, truncate toward zero, NaN -> 0 (pl_f2i)."""
    if math.isnan(v):
        return 0
    if v > _LIMIT:
        return _LIMIT
    if v < -_LIMIT:
        return -_LIMIT
    return int(v)


def box_rect(b: Box) -> Rect:
    """A detection box -> the integer rect every shipped filter uses (pl_box_rect)."""
    x1, y1, x2, y2 = f2i(b.x1), f2i(b.y1), f2i(b.x2), f2i(b.y2)
    return Rect(x1, y1, x2 - x1 if x2 > x1 else 0, y2 - y1 if y2 > y1 else 0)


def parse_config(text: str) -> dict[str, Any]:
    """The filter's [filters.config] table, as the host hands it to init (JSON)."""
    cfg = json.loads(text) if text.strip() else {}
    if not isinstance(cfg, dict):
        raise ValueError("config must be a JSON object")
    return cfg


def number(cfg: dict[str, Any], key: str, default: float) -> float:
    """A numeric config value, or `default` when absent or not a number (pl_config_number)."""
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return default
    return float(v)
