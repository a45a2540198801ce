"""blur_faces: Gaussian-blur every detection's box in place, in ONE blur call.

The Python twin of filters/c/blur_faces.c: same config, same box -> rect
conversion, same single batched `blur`, so the pixels are identical.
config: kernel (odd, 1..255, default 31).
"""

from __future__ import annotations

import wit_world
from componentize_py_types import Err
from wit_world.imports import detections
from wit_world.imports.frame import Frame
from wit_world.imports.types import FilterError_Failed

from pipeless_guest import box_rect, number, parse_config

_kernel = 31


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        global _kernel
        try:
            k = number(parse_config(config), "kernel", 31)
        except ValueError as exc:
            raise Err(f"bad config: {exc}")
        if k < 1 or k > 255 or int(k) % 2 == 0:
            raise Err("kernel must be odd, 1..255")
        _kernel = int(k)

    def process(self, frame: Frame) -> None:
        try:
            dets = detections.get_detections(frame)
            if dets:
                frame.blur([box_rect(d.box) for d in dets], _kernel)
        except Exception as exc:  # a bug here fails this frame only
            raise Err(FilterError_Failed(f"{type(exc).__name__}: {exc}"))
