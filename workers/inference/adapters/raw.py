"""No decoding: the model's outputs go to the results as they are.

For models the pipeline has no adapter for (classifiers, embedders,
segmenters): filters and result consumers read the tensors themselves. The
input convention is the most common one for exported vision models, NCHW or
NHWC as the graph says, RGB in 0..1, letterboxed with black; symbolic sizes
default to 224x224 (classification-sized) unless inference.input_size is set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from pipeless.orchestrator.config import InferenceSection
from pipeless.protocol.messages import Detection, ModelInput
from pipeless.workers.inference.adapters.base import image_input

__all__ = ["Raw"]


class Raw:
    """Passes outputs through; detections are always empty."""

    name = "raw"

    def __init__(self) -> None:
        self._output_names: list[str] = []

    def prepare(self, model_path: str) -> str | bytes:
        return model_path

    def model_input(self, session: ort.InferenceSession, cfg: InferenceSection) -> ModelInput:
        # Remember the output names: raw() only receives the arrays.
        self._output_names = [o.name for o in session.get_outputs()]
        return image_input(session, cfg, color="RGB", scale=1.0 / 255.0, offset=0.0, pad_value=0,
                           letterbox=True, default_size=(224, 224))

    def decode(self, outputs: list[np.ndarray], sizes: list[tuple[int, int]], spec: ModelInput,
               cfg: InferenceSection) -> list[list[Detection]]:
        return [[] for _ in sizes]

    def raw(self, outputs: list[np.ndarray], index: int) -> dict[str, Any]:
        """{output name: {"shape", "dtype", "data"}} for frame `index` (its batch row), JSON/msgpack-ready."""
        result: dict[str, Any] = {}
        for k, out in enumerate(outputs):
            name = self._output_names[k] if k < len(self._output_names) else f"output{k}"
            arr = np.asarray(out)
            row = arr[index] if arr.ndim >= 1 and arr.shape[0] > index else arr
            result[name] = {"shape": list(row.shape), "dtype": str(row.dtype), "data": row.ravel().tolist()}
        return result
