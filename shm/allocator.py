"""Which slots are free: owned by the orchestrator, shared by its decode and writer threads."""

from __future__ import annotations

import threading
from collections import deque

from pipeless.protocol.messages import SlotHandle
from pipeless.shm.ring import FrameRing


class SlotAllocator:
    """A free list over the ring with a condition variable, so a file decoder can wait for a slot."""

    def __init__(self, ring: FrameRing) -> None:
        self.ring = ring
        self._free: deque[int] = deque(range(ring.layout.slots))
        self._cond = threading.Condition()

    @property
    def in_use(self) -> int:
        with self._cond:
            return self.ring.layout.slots - len(self._free)

    def try_acquire(self) -> SlotHandle | None:
        with self._cond:
            if not self._free:
                return None
            slot = self._free.popleft()
            return SlotHandle(slot, self.ring.bump(slot))

    def acquire(self, timeout: float) -> SlotHandle | None:
        """Wait up to `timeout` seconds for a free slot (callers loop so they can notice a stop)."""
        with self._cond:
            if not self._free:
                self._cond.wait(timeout)
            if not self._free:
                return None
            slot = self._free.popleft()
            return SlotHandle(slot, self.ring.bump(slot))

    def renew(self, handle: SlotHandle) -> SlotHandle:
        """Reuse a slot we hold for a new frame (a dropped live frame): old handles go stale."""
        with self._cond:
            return SlotHandle(handle.slot, self.ring.bump(handle.slot))

    def release(self, handle: SlotHandle) -> None:
        with self._cond:
            if self.ring.generation(handle.slot) != handle.generation:
                return  # already freed or renewed: never free a slot twice
            self.ring.bump(handle.slot)
            self._free.append(handle.slot)
            self._cond.notify()

    def wake_all(self) -> None:
        with self._cond:
            self._cond.notify_all()
