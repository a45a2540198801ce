"""draw_detections: every detection's box with a "label NN%" tag, in ONE draw-boxes call.

The Python twin of filters/c/draw_detections.c.
config: r, g, b (box colour, default 0 255 0), thickness (1..64, default 2).
"""

from __future__ import annotations

import wit_world
from componentize_py_types import Err
from wit_world.imports import detections
from wit_world.imports.frame import BoxShape, Frame
from wit_world.imports.types import Color, FilterError_Failed

from pipeless_guest import box_rect, number, parse_config

_color = Color(0, 255, 0)
_thickness = 2


def tag(label: str, score: float) -> str:
    """"<label> <percent>%" with percent = int(score * 100 + 0.5) clamped to 0..100."""
    s = score * 100.0 + 0.5
    pct = 0 if s < 0 else 100 if s > 100 else int(s)
    return f"{label} {pct}%"


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        global _color, _thickness
        try:
            cfg = parse_config(config)
        except ValueError as exc:
            raise Err(f"bad config: {exc}")
        rgb = [int(number(cfg, key, dflt)) & 0xFF for key, dflt in (("r", 0), ("g", 255), ("b", 0))]
        thickness = int(number(cfg, "thickness", 2))
        if thickness < 1 or thickness > 64:
            raise Err("thickness must be 1..64")
        _color, _thickness = Color(*rgb), thickness

    def process(self, frame: Frame) -> None:
        try:
            dets = detections.get_detections(frame)
            if dets:
                frame.draw_boxes([BoxShape(box_rect(d.box), _color, _thickness, tag(d.label, d.score)) for d in dets])
        except Exception as exc:
            raise Err(FilterError_Failed(f"{type(exc).__name__}: {exc}"))
