"""The shared-memory frame ring: slots that decoders write into and every other process reads in place."""

from pipeless.protocol.messages import RingLayout
from pipeless.shm.ring import FrameRing, StaleHandle
from pipeless.shm.segment import SEGMENT_PREFIX, Segment, reclaim_stale_segments

__all__ = ["FrameRing", "RingLayout", "StaleHandle", "Segment", "SEGMENT_PREFIX", "reclaim_stale_segments"]
