"""YOLO detectors exported to ONNX (Ultralytics YOLOv5 and YOLOv8/v11 heads).

Two output layouts exist in the wild, told apart by shape:

* v5-style [N, boxes, 5 + C]: cx, cy, w, h, objectness, C class scores;
  a box's score is objectness * best class score.
* v8-style [N, 4 + C, boxes]: cx, cy, w, h, C class scores (no objectness);
  a box's score is its best class score.

The attribute axis is the short one (85 vs 25200, 84 vs 8400). A transposed
v8 export ([N, boxes, 4 + C]) looks like a v5 one; when `labels` are
configured their count settles it (C = len(labels)). Boxes are in
model-input pixels, as Ultralytics exports them (no in-graph NMS).

Input: NCHW, RGB, 0..1, letterboxed with grey 114 padding, the Ultralytics
training convention. Symbolic input sizes default to 640x640, rounded to a
multiple of 32.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from pipeless.orchestrator.config import InferenceSection
from pipeless.protocol.messages import Detection, ModelInput
from pipeless.workers.inference.adapters.base import detections_from_candidates, image_input

__all__ = ["Yolo", "split_yolo"]


def split_yolo(out: np.ndarray, num_labels: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One YOLO output [N, ., .] -> per-box (cxcywh [N, B, 4], scores [N, B], class ids [N, B]).

    num_labels (0: unknown) resolves the ambiguous [N, boxes, 4 + C] case.
    """
    if out.ndim != 3:
        raise ValueError(f"expected a [batch, boxes, attributes] YOLO output, got shape {out.shape}")
    _, d1, d2 = out.shape
    if num_labels and d2 == 4 + num_labels and d2 < d1:
        v8, rows = True, out  # v8 head exported already transposed
    elif num_labels and d1 == 4 + num_labels and d1 < d2:
        v8, rows = True, out.transpose(0, 2, 1)
    elif d1 < d2:
        v8, rows = True, out.transpose(0, 2, 1)  # [N, 4+C, B] -> [N, B, 4+C]
    else:
        v8, rows = False, out
    if v8:
        cls = rows[:, :, 4:]
        if cls.shape[2] == 0:
            raise ValueError(f"YOLO output {out.shape} has no class scores")
        ids = cls.argmax(axis=2)
        scores = np.take_along_axis(cls, ids[:, :, None], axis=2)[:, :, 0]
    else:
        if rows.shape[2] < 6:
            raise ValueError(f"YOLO output {out.shape} has no class scores")
        cls = rows[:, :, 5:]
        ids = cls.argmax(axis=2)
        scores = rows[:, :, 4] * np.take_along_axis(cls, ids[:, :, None], axis=2)[:, :, 0]
    return rows[:, :, :4], scores.astype(np.float32), ids


class Yolo:
    """Adapter for YOLOv5/v8-style detection heads (no in-graph NMS)."""

    name = "yolo"

    def prepare(self, model_path: str) -> str | bytes:
        return model_path

    def model_input(self, session: ort.InferenceSession, cfg: InferenceSection) -> ModelInput:
        return image_input(session, cfg, color="RGB", scale=1.0 / 255.0, offset=0.0, pad_value=114,
                           letterbox=True, default_size=(640, 640), multiple=32)

    def decode(self, outputs: list[np.ndarray], sizes: list[tuple[int, int]], spec: ModelInput,
               cfg: InferenceSection) -> list[list[Detection]]:
        # Only the first output is the detection head (segmentation exports add mask prototypes).
        cxcywh, scores, ids = split_yolo(np.asarray(outputs[0]), len(cfg.labels))
        if scores.shape[0] != len(sizes):
            raise ValueError(f"outputs hold {scores.shape[0]} frames, expected {len(sizes)}")
        names = cfg.labels
        result: list[list[Detection]] = []
        for i, size in enumerate(sizes):
            cand = np.flatnonzero(scores[i] >= cfg.score_threshold)
            if cand.size == 0:
                result.append([])
                continue
            c = cxcywh[i, cand].astype(np.float32)
            half = c[:, 2:4] * 0.5
            boxes = np.concatenate([c[:, :2] - half, c[:, :2] + half], axis=1)
            cls = ids[i, cand]
            labels = [names[k] if k < len(names) else str(k) for k in cls.tolist()]
            result.append(detections_from_candidates(boxes, scores[i, cand], size, spec, cfg, labels, cls))
        return result

    def raw(self, outputs: list[np.ndarray], index: int) -> dict[str, Any]:
        return {}
