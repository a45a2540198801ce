"""The frame ring: N fixed-size slots in one shared-memory segment.

Each slot holds a 64-byte header, room for the largest frame of any stream
(H x W x 3 uint8, written in place by the decoder) and room for the model's
input tensor (written in place by pre-processing). A slot is named on the
wire by a (slot, generation) handle; the generation in the header moves on
every time the slot is taken or freed, so a handle that outlived its frame
(a late reply from a restarted worker, say) is refused instead of reading
someone else's pixels.
"""

from __future__ import annotations

import numpy as np

from pipeless.protocol.messages import RING_HEADER_BYTES, RingLayout, SlotHandle, ring_aligned
from pipeless.shm.segment import Segment

HEADER_BYTES = RING_HEADER_BYTES

HEADER_DTYPE = np.dtype(
    [
        ("generation", "<u8"),
        ("frame", "<u8"),
        ("pts", "<f8"),
        ("width", "<u4"),
        ("height", "<u4"),
        ("channels", "<u4"),
        ("stream", "<u4"),
    ]
)


class StaleHandle(Exception):
    """The handle's generation no longer matches the slot: its frame is gone."""


class FrameRing:
    """Typed views onto the ring's segment; creation and unlinking belong to the orchestrator."""

    def __init__(self, layout: RingLayout, segment: Segment) -> None:
        self.layout = layout
        self.segment = segment
        raw = np.frombuffer(segment.mmap, dtype=np.uint8, count=layout.total_bytes)
        self._slots = raw.reshape(layout.slots, layout.slot_bytes)
        self._headers = [
            self._slots[i, : HEADER_DTYPE.itemsize].view(HEADER_DTYPE) for i in range(layout.slots)
        ]

    @classmethod
    def create(cls, slots: int, frame_bytes: int, tensor_bytes: int, tag: str = "ring") -> "FrameRing":
        probe = RingLayout("", slots, frame_bytes, tensor_bytes)
        segment = Segment.create(tag, probe.total_bytes)
        return cls(RingLayout(segment.name, slots, frame_bytes, tensor_bytes), segment)

    @classmethod
    def attach(cls, layout: RingLayout) -> "FrameRing":
        return cls(layout, Segment.attach(layout.name))

    # -- header ---------------------------------------------------------
    def header(self, slot: int) -> np.ndarray:
        """A one-element structured view of the slot's header (fields as in HEADER_DTYPE)."""
        return self._headers[slot]

    def generation(self, slot: int) -> int:
        return int(self._headers[slot]["generation"][0])

    def bump(self, slot: int) -> int:
        """Move the slot's generation on (take or free): every older handle becomes stale."""
        hdr = self._headers[slot]
        hdr["generation"] += 1
        return int(hdr["generation"][0])

    def stamp(self, slot: int, *, stream: int, frame: int, pts: float, width: int, height: int) -> None:
        hdr = self._headers[slot]
        hdr["stream"] = stream
        hdr["frame"] = frame
        hdr["pts"] = pts
        hdr["width"] = width
        hdr["height"] = height
        hdr["channels"] = 3

    def check(self, handle: SlotHandle) -> None:
        if not 0 <= handle.slot < self.layout.slots:
            raise StaleHandle(f"slot {handle.slot} is outside the ring of {self.layout.slots}")
        current = self.generation(handle.slot)
        if current != handle.generation:
            raise StaleHandle(
                f"slot {handle.slot} is at generation {current}, handle has {handle.generation}"
            )

    # -- views ----------------------------------------------------------
    def frame_buffer(self, slot: int, width: int, height: int) -> np.ndarray:
        """The slot's frame area as an H x W x 3 uint8 array (no generation check: for the decoder)."""
        n = width * height * 3
        if n > self.layout.frame_bytes:
            raise ValueError(f"{width}x{height} frame does not fit a {self.layout.frame_bytes}-byte slot")
        return self._slots[slot, HEADER_BYTES : HEADER_BYTES + n].reshape(height, width, 3)

    def frame_view(self, handle: SlotHandle) -> np.ndarray:
        """The frame a handle names, shaped from its header; StaleHandle if the slot moved on."""
        self.check(handle)
        hdr = self._headers[handle.slot]
        return self.frame_buffer(handle.slot, int(hdr["width"][0]), int(hdr["height"][0]))

    def tensor_view(self, handle: SlotHandle, shape: tuple[int, ...]) -> np.ndarray:
        """The slot's model-input area as a float32 array of `shape` (one frame, no batch dim)."""
        self.check(handle)
        n = int(np.prod(shape)) * 4
        if n > self.layout.tensor_bytes:
            raise ValueError(f"tensor {shape} does not fit the slot's {self.layout.tensor_bytes} bytes")
        start = HEADER_BYTES + ring_aligned(self.layout.frame_bytes)
        return self._slots[handle.slot, start : start + n].view(np.float32).reshape(shape)

    def close(self) -> None:
        self._headers = []
        self._slots = np.empty((0, 0), np.uint8)
        self.segment.close()
