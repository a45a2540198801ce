"""Draw each detection's box and label on the frame, in place."""

from __future__ import annotations

from typing import Any

import cv2

from pipeless.workers.frame import Frame


def draw_detections(frame: Frame, config: dict[str, Any]) -> None:
    color = tuple(int(c) for c in config.get("color", [0, 255, 0]))
    thickness = int(config.get("thickness", 2))
    for det in frame.detections:
        x1, y1, x2, y2 = (int(round(v)) for v in det.box)
        cv2.rectangle(frame.image, (x1, y1), (x2, y2), color, thickness)
        cv2.putText(frame.image, f"{det.label} {det.score:.2f}", (x1, max(10, y1 - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, color, 1, cv2.LINE_AA)
    return None
