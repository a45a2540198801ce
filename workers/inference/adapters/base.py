"""What every model adapter provides, and the small pieces they share.

An adapter is the only model-specific code in the pipeline: it says how to
load the model (`prepare`), how a frame must be turned into its input tensor
(`model_input`, computed once and handed to every worker), and how the raw
output tensors become detections in source pixels (`decode`). Everything else
(batching, shared memory, results) is model-agnostic.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import cv2
import numpy as np
import onnxruntime as ort

from pipeless.orchestrator.config import InferenceSection
from pipeless.protocol.messages import Detection, ModelInput
from pipeless.workers.inference.letterbox import geometry, to_source
from pipeless.workers.inference.providers import ModelLoadError, model_name

__all__ = [
    "Adapter", "ModelLoadError", "image_input", "round_up", "sigmoid", "nms", "to_detections",
    "detections_from_candidates",
]


@runtime_checkable
class Adapter(Protocol):
    """The model-specific part of the inference process."""

    name: str

    def prepare(self, model_path: str) -> str | bytes:
        """What to hand to open_session: the path, or a rewritten model as bytes."""
        ...

    def model_input(self, session: ort.InferenceSession, cfg: InferenceSection) -> ModelInput:
        """How frames become this model's input; computed once, sent to every worker."""
        ...

    def decode(self, outputs: list[np.ndarray], sizes: list[tuple[int, int]], spec: ModelInput,
               cfg: InferenceSection) -> list[list[Detection]]:
        """A batch's outputs (batch dim first) -> per-frame detections in source pixels.

        sizes[i] is frame i's source (width, height), needed to undo its letterbox.
        """
        ...

    def raw(self, outputs: list[np.ndarray], index: int) -> dict[str, Any]:
        """Frame `index`'s raw outputs for the result message; {} except for the raw adapter."""
        ...


def round_up(value: int, multiple: int) -> int:
    """Round up to a multiple: strided CNNs need input sizes divisible by their total stride."""
    return max(multiple, -(-int(value) // multiple) * multiple)


def _fixed(dim: Any) -> int | None:
    """A fixed positive dimension, or None for a symbolic one ('B', None, -1)."""
    return dim if isinstance(dim, int) and dim > 0 else None


def image_input(
    session: ort.InferenceSession,
    cfg: InferenceSection,
    *,
    color: str,
    scale: float,
    offset: float,
    pad_value: int = 0,
    letterbox: bool = True,
    default_size: tuple[int, int] = (640, 640),
    multiple: int = 1,
) -> ModelInput:
    """ModelInput for a 4-D image input, reading what the model fixes and filling in the rest.

    Layout comes from where the 3 is (NHWC if last, else NCHW). Width and
    height are the model's when fixed; when symbolic they are cfg.input_size
    or `default_size`, rounded up to `multiple`. A fixed batch of 1 gives
    max_batch=1 (the inference process must run frames one by one), a
    symbolic one 0 (any batch). Any mismatch between the model and the config
    is a ModelLoadError naming the model, since nothing can run that way.
    """
    where = model_name(session)
    inp = session.get_inputs()[0]
    shape = list(inp.shape)
    if len(shape) != 4:
        raise ModelLoadError(f"{where}: expected a 4-D image input, got {inp.name!r} with shape {shape}")
    if shape[3] == 3 and shape[1] != 3:
        layout, h_dim, w_dim = "NHWC", shape[1], shape[2]
    else:
        layout, h_dim, w_dim = "NCHW", shape[2], shape[3]
    fixed_w, fixed_h = _fixed(w_dim), _fixed(h_dim)
    want = list(cfg.input_size) if cfg.input_size else []
    if fixed_w and fixed_h:
        if want and (round_up(want[0], multiple), round_up(want[1], multiple)) != (fixed_w, fixed_h):
            raise ModelLoadError(
                f"{where}: inference.input_size {want} does not match the model's fixed input "
                f"{fixed_w}x{fixed_h}; remove input_size or use a model with symbolic dims")
        width, height = fixed_w, fixed_h
    else:
        w, h = want if want else default_size
        width = fixed_w or round_up(w, multiple)
        height = fixed_h or round_up(h, multiple)
    batch = _fixed(shape[0])
    if batch is not None and batch != 1:
        raise ModelLoadError(
            f"{where}: fixed batch size {batch} is not supported; export the model with batch 1 or a dynamic batch")
    return ModelInput(
        name=inp.name, width=int(width), height=int(height), layout=layout, color=color,
        scale=float(scale), offset=float(offset), pad_value=int(pad_value), letterbox=letterbox,
        max_batch=1 if batch == 1 else 0,
    )


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, clipped so large logits neither overflow nor warn."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def nms(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, nms_threshold: float,
        class_ids: np.ndarray | None = None) -> np.ndarray:
    """Indices kept by OpenCV's NMS (per class when class_ids is given), best score first.

    boxes are x1y1x2y2; cv2.dnn.NMSBoxes wants x, y, w, h.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    xywh = np.asarray(boxes, dtype=np.float32).copy()
    xywh[:, 2:] -= xywh[:, :2]
    sc = np.asarray(scores, dtype=np.float32)
    if class_ids is None:
        keep = cv2.dnn.NMSBoxes(xywh, sc, float(score_threshold), float(nms_threshold))
    else:
        keep = cv2.dnn.NMSBoxesBatched(xywh, sc, np.asarray(class_ids, dtype=np.int32),
                                       float(score_threshold), float(nms_threshold))
    return np.asarray(keep, dtype=np.int64).reshape(-1)


def to_detections(boxes: np.ndarray, scores: np.ndarray, labels: str | Sequence[str]) -> list[Detection]:
    """Plain-Python Detections (msgspec encodes floats, not numpy scalars), boxes rounded to 0.01 px.

    `labels` is one label for all boxes (face detectors) or one per box.
    """
    if isinstance(labels, str):
        labels = [labels] * len(boxes)
    return [
        Detection(label=str(lab), score=round(float(s), 4), box=[round(float(v), 2) for v in b])
        for b, s, lab in zip(boxes, scores, labels)
    ]


def detections_from_candidates(
    boxes_in: np.ndarray,
    scores: np.ndarray,
    size: tuple[int, int],
    spec: ModelInput,
    cfg: InferenceSection,
    labels: str | Sequence[str],
    class_ids: np.ndarray | None = None,
) -> list[Detection]:
    """One frame's candidates (x1y1x2y2 in model-input pixels) -> thresholded, NMS'd source-pixel Detections.

    NMS runs in model-input pixels, the space the model was trained in, so a
    stretched (non-letterboxed) input does not change which boxes overlap.
    """
    mask = scores >= cfg.score_threshold
    if not np.any(mask):
        return []
    idx = np.flatnonzero(mask)
    boxes_in, scores = boxes_in[idx], scores[idx]
    if class_ids is not None:
        class_ids = class_ids[idx]
    keep = nms(boxes_in, scores, cfg.score_threshold, cfg.nms_threshold, class_ids)
    src_w, src_h = size
    boxes = to_source(boxes_in[keep], geometry(src_w, src_h, spec), src_w, src_h)
    # Boxes lying entirely in the padding collapse to zero size once clipped.
    ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if not isinstance(labels, str):
        labels = [labels[i] for i in idx[keep][ok]]
    return to_detections(boxes[ok], scores[keep][ok], labels)
