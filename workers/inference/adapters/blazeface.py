"""MediaPipe BlazeFace (front 128x128 and back 256x256 short-range models).

The graph ends at the raw SSD heads, so anchors and box decoding live here:
two score tensors [N, 512, 1] + [N, 384, 1] and two regressor tensors
[N, 512, 16] + [N, 384, 16]. The 512 anchors are a 16x16 grid with 2 anchors
per cell, the 384 an 8x8 grid with 6 per cell (strides 8/16 for the 128
model, 16/32 for the 256 one). MediaPipe uses fixed-size anchors, so each
regressor row is, in input pixels: centre offset (dx, dy), box (w, h), then
six keypoints (eyes, nose, mouth, ears) as offsets from the anchor centre.

Input range, measured on samples/carphone.mp4 rather than assumed: [0, 1]
and [-1, 1] both find the face at full size, but with [-1, 1] the face keeps
being found when the frame is shrunk to 35% (front model: mean top score
0.49 vs 0.28) or darkened to 30% brightness (0.92 vs 0.84), and face scores
are higher throughout. So pixels map to [-1, 1] (as MediaPipe's own graph
does): value = pixel / 127.5 - 1.

The graphs have a fixed batch of 1 (max_batch=1); the inference process runs
frames one at a time and concatenates the outputs on dim 0, which is what
`decode` expects.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import onnxruntime as ort

from pipeless.orchestrator.config import InferenceSection
from pipeless.protocol.messages import Detection, ModelInput
from pipeless.workers.inference.adapters.base import detections_from_candidates, image_input, sigmoid

__all__ = ["BlazeFace", "anchor_centres"]

_STRIDES = (4, 8, 16, 32, 64, 128)


@lru_cache(maxsize=8)
def _grid(size: int, count: int) -> tuple[int, int]:
    """(cells per side, anchors per cell) for a head with `count` anchors on a `size`-pixel input.

    The finest grid whose cell count divides the anchor count: 512 on 128 px
    -> 16x16x2, 384 -> 8x8x6 (and the same grids on the 256 px model, whose
    strides are twice as large).
    """
    for stride in _STRIDES:
        cells = size // stride
        if cells and count % (cells * cells) == 0:
            return cells, count // (cells * cells)
    raise ValueError(f"cannot lay out {count} anchors on a {size}px input")


@lru_cache(maxsize=8)
def anchor_centres(width: int, height: int, counts: tuple[int, ...]) -> np.ndarray:
    """(sum(counts), 2) anchor centres in input pixels, heads in the order given, row-major, MediaPipe's order."""
    parts = []
    for count in counts:
        cells, per_cell = _grid(min(width, height), count)
        xs = (np.arange(cells, dtype=np.float32) + 0.5) * (width / cells)
        ys = (np.arange(cells, dtype=np.float32) + 0.5) * (height / cells)
        gx, gy = np.meshgrid(xs, ys)  # row-major: y outer, x inner
        centres = np.stack([gx.ravel(), gy.ravel()], axis=1)
        parts.append(np.repeat(centres, per_cell, axis=0))
    out = np.concatenate(parts).astype(np.float32)
    out.setflags(write=False)
    return out


class BlazeFace:
    """Adapter for MediaPipe's BlazeFace short-range face detectors."""

    name = "blazeface"

    def prepare(self, model_path: str) -> str | bytes:
        return model_path

    def model_input(self, session: ort.InferenceSession, cfg: InferenceSection) -> ModelInput:
        # Letterbox with black padding, as MediaPipe feeds the model; RGB in [-1, 1] (see module doc).
        return image_input(session, cfg, color="RGB", scale=1.0 / 127.5, offset=-1.0, pad_value=0,
                           letterbox=True, default_size=(128, 128))

    @staticmethod
    def _heads(outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
        """Concatenate the heads, matched by shape (last dim 1: scores, >=4: regressors), not by name."""
        scores = [o for o in outputs if o.ndim == 3 and o.shape[2] == 1]
        regs = [o for o in outputs if o.ndim == 3 and o.shape[2] >= 4]
        if not scores or len(scores) != len(regs):
            raise ValueError(f"unexpected BlazeFace outputs: {[o.shape for o in outputs]}")
        scores.sort(key=lambda o: -o.shape[1])  # finest grid (most anchors) first, as the anchors are laid out
        regs.sort(key=lambda o: -o.shape[1])
        counts = tuple(o.shape[1] for o in scores)
        if counts != tuple(r.shape[1] for r in regs):
            raise ValueError(f"BlazeFace score and regressor heads disagree: {[o.shape for o in outputs]}")
        return np.concatenate(scores, axis=1)[:, :, 0], np.concatenate(regs, axis=1), counts

    def decode(self, outputs: list[np.ndarray], sizes: list[tuple[int, int]], spec: ModelInput,
               cfg: InferenceSection) -> list[list[Detection]]:
        logits, regs, counts = self._heads(outputs)
        if logits.shape[0] != len(sizes):
            raise ValueError(f"outputs hold {logits.shape[0]} frames, expected {len(sizes)}")
        anchors = anchor_centres(spec.width, spec.height, counts)
        scores = sigmoid(logits)
        result: list[list[Detection]] = []
        for i, size in enumerate(sizes):
            cand = np.flatnonzero(scores[i] >= cfg.score_threshold)
            if cand.size == 0:
                result.append([])
                continue
            r = regs[i, cand]
            centre = anchors[cand] + r[:, 0:2]
            half = r[:, 2:4] * 0.5
            boxes = np.concatenate([centre - half, centre + half], axis=1)
            result.append(detections_from_candidates(boxes, scores[i, cand], size, spec, cfg, "face"))
        return result

    def raw(self, outputs: list[np.ndarray], index: int) -> dict[str, Any]:
        return {}
