"""The frame a filter works on: a view of a shared-memory slot, never a copy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeless.protocol.messages import Detection, ModelInput


@dataclass
class Frame:
    """One decoded frame as a filter sees it.

    `image` is a numpy view (H x W x 3, uint8, BGR) straight onto the slot in
    shared memory: writing to it changes what the output and later stages see,
    with no copy. `detections` is a plain list the filter may edit or replace.
    `tensor` is the slot's model-input area (pre stage only), so a pre filter
    can prepare the inference input in place.
    """

    image: np.ndarray
    stream: str
    index: int
    pts: float
    detections: list[Detection] = field(default_factory=list)
    tensor: np.ndarray | None = None
    model_input: ModelInput | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])
