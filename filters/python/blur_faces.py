"""Blur every detected face in place: the demo's anonymiser, as a trusted Python filter."""

from __future__ import annotations

from typing import Any

import cv2

from pipeless.workers.frame import Frame


def blur_faces(frame: Frame, config: dict[str, Any]) -> dict[str, int]:
    """Blur each detection's box (grown by `margin`, a fraction of its size) directly in the slot."""
    margin = float(config.get("margin", 0.1))
    kernel = int(config.get("kernel", 0))
    h, w = frame.image.shape[:2]
    blurred = 0
    for det in frame.detections:
        x1, y1, x2, y2 = det.box
        mx, my = (x2 - x1) * margin, (y2 - y1) * margin
        x1, y1 = max(0, int(x1 - mx)), max(0, int(y1 - my))
        x2, y2 = min(w, int(x2 + mx + 0.5)), min(h, int(y2 + my + 0.5))
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        roi = frame.image[y1:y2, x1:x2]
        k = kernel or (max(x2 - x1, y2 - y1) // 3) | 1
        cv2.GaussianBlur(roi, (k, k), 0, dst=roi)
        blurred += 1
    return {"blurred": blurred}
