"""Every message that crosses a process boundary, as msgspec Structs.

Messages carry slot *handles*, never pixels: a frame travels as a few dozen
bytes of msgpack and is read in place from shared memory on the other side.
Tagged unions let each socket decode exactly the messages it expects and
reject anything else with a clear error instead of a KeyError deep inside.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Detection(msgspec.Struct, array_like=False, omit_defaults=True):
    """One detected object, its box in source-frame pixels (x1, y1, x2, y2)."""

    label: str
    score: float
    box: list[float]


class SlotHandle(msgspec.Struct, array_like=True, frozen=True):
    """Names one use of one slot; the generation makes a handle go stale once the slot is reused."""

    slot: int
    generation: int


class FilterFailure(msgspec.Struct):
    """A filter that failed on one frame: the frame goes on, the failure is reported in its result."""

    filter: str
    kind: str  # "trap", "deadline", "memory", "host-call", "error", "crash"
    message: str


class FilterTask(msgspec.Struct, tag="filter", array_like=True):
    """Orchestrator -> worker: run one stage of the filter chain on a slot."""

    handle: SlotHandle
    stream: str
    frame: int
    pts: float
    stage: str  # "pre" or "post"
    detections: list[Detection] = []


class FilterDone(msgspec.Struct, tag="filter-done", array_like=True):
    """Worker -> orchestrator: the stage ran; detections as the filters left them."""

    handle: SlotHandle
    stage: str
    detections: list[Detection]
    data: dict[str, Any] = {}
    failures: list[FilterFailure] = []


class InferTask(msgspec.Struct, tag="infer", array_like=True):
    """Orchestrator -> inference: the slot's input tensor is ready."""

    handle: SlotHandle
    stream: str
    frame: int


class InferDone(msgspec.Struct, tag="infer-done", array_like=True):
    """Inference -> orchestrator: detections in source pixels, plus raw outputs for the `raw` adapter."""

    handle: SlotHandle
    detections: list[Detection]
    batch_size: int
    batch_id: int = 0  # sequence number of the batch this frame ran in
    raw: dict[str, Any] = {}
    error: str = ""


class ModelInput(msgspec.Struct, frozen=True):
    """How a frame becomes the model's input tensor; computed once by the inference process.

    Workers use it to letterbox each frame into its slot's tensor area, so the
    inference process only stacks ready tensors into a batch.
    """

    name: str
    width: int
    height: int
    layout: str  # "NHWC" or "NCHW"
    color: str  # "RGB" or "BGR"
    scale: float  # pixel * scale ...
    offset: float  # ... + offset
    pad_value: int = 0
    letterbox: bool = True  # False: stretch to the input size
    max_batch: int = 0  # 0: any batch size; 1: the model runs one frame at a time

    @property
    def shape(self) -> tuple[int, int, int]:
        """The per-frame tensor shape, without the batch dimension."""
        if self.layout == "NHWC":
            return (self.height, self.width, 3)
        return (3, self.height, self.width)

    @property
    def nbytes(self) -> int:
        h, w, c = self.height, self.width, 3
        return h * w * c * 4


RING_HEADER_BYTES = 64
RING_ALIGN = 64


def ring_aligned(n: int) -> int:
    return (n + RING_ALIGN - 1) // RING_ALIGN * RING_ALIGN


class RingLayout(msgspec.Struct, frozen=True):
    """Everything a process needs to attach the ring; sent to children at start."""

    name: str
    slots: int
    frame_bytes: int
    tensor_bytes: int

    @property
    def slot_bytes(self) -> int:
        return RING_HEADER_BYTES + ring_aligned(self.frame_bytes) + ring_aligned(self.tensor_bytes)

    @property
    def total_bytes(self) -> int:
        return self.slot_bytes * self.slots


class Attach(msgspec.Struct, tag="attach", array_like=True):
    """Orchestrator -> inference: the ring now exists (it is sized from the model input the inference reported)."""

    ring: RingLayout


class Hello(msgspec.Struct, tag="hello", array_like=True):
    """A child announces itself once its sockets are connected (and, for inference, its model is loaded)."""

    role: str  # "worker" or "inference"
    pid: int
    provider: str = ""
    model_input: ModelInput | None = None


class Stop(msgspec.Struct, tag="stop", array_like=True):
    """Orchestrator -> child: finish the current task, close sockets, exit."""


class Fatal(msgspec.Struct, tag="fatal", array_like=True):
    """Child -> orchestrator: a one-line reason the child cannot run at all (bad model, bad filter)."""

    role: str
    message: str


ToWorker = FilterTask | Stop
FromWorker = Hello | FilterDone | Fatal
ToInference = InferTask | Attach | Stop
FromInference = Hello | InferDone | Fatal

_encoder = msgspec.msgpack.Encoder()
encode = _encoder.encode
to_worker = msgspec.msgpack.Decoder(ToWorker)
from_worker = msgspec.msgpack.Decoder(FromWorker)
to_inference = msgspec.msgpack.Decoder(ToInference)
from_inference = msgspec.msgpack.Decoder(FromInference)
