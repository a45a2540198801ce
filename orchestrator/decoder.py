"""One thread per stream decoding straight into free ring slots.

`VideoCapture.read(dst)` decodes into the slot's own memory, so a frame is
written once and never copied again. Files are lossless: the decoder waits
for a free slot. Live sources never fall behind: when the ring is full the
stream's oldest frame that is still waiting for dispatch is dropped and its
slot reused; if every frame of the stream is already being processed, the
new frame is grabbed and discarded instead. Either way the drop is counted
and reported, so the frame order downstream skips it instead of waiting.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

import cv2

from pipeless.orchestrator.sources import SourceInfo
from pipeless.orchestrator.ticket import Ticket
from pipeless.shm.allocator import SlotAllocator


class ReadyQueue:
    """Frames decoded but not yet dispatched, per stream; the decoder may take back the oldest."""

    def __init__(self) -> None:
        self._items: deque[Ticket] = deque()
        self._lock = threading.Lock()

    def put(self, ticket: Ticket) -> None:
        with self._lock:
            self._items.append(ticket)

    def take(self) -> Ticket | None:
        with self._lock:
            return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        return len(self._items)


class Decoder(threading.Thread):
    """Decodes one stream. Calls `notify(event, ticket_or_index)` for "frame", "dropped" and "eos"."""

    def __init__(self, stream: int, name: str, cap: cv2.VideoCapture, info: SourceInfo,
                 allocator: SlotAllocator, ready: ReadyQueue,
                 notify: Callable[[str, int, object], None], stop: threading.Event) -> None:
        super().__init__(name=f"decode-{name}", daemon=True)
        self.stream = stream
        self.cap = cap
        self.info = info
        self.allocator = allocator
        self.ring = allocator.ring
        self.ready = ready
        self.notify = notify
        self.stop = stop
        self.decoded = 0
        self.dropped = 0
        self.error = ""
        self._started_at = time.monotonic()

    def run(self) -> None:
        index = 0
        try:
            while not self.stop.is_set():
                handle = self._slot_for(index)
                if handle is None:
                    if self.stop.is_set():
                        break
                    # live, every slot busy with this stream's frames in flight: skip one frame
                    if not self.cap.grab():
                        break
                    self.dropped += 1
                    self.notify("dropped", self.stream, index)
                    index += 1
                    continue
                w, h = self.info.width, self.info.height
                buf = self.ring.frame_buffer(handle.slot, w, h)
                ok, img = self.cap.read(buf)
                if not ok or img is None:
                    self.allocator.release(handle)
                    break
                if img is not buf:  # the source changed resolution: copy if it still fits the slot
                    h, w = img.shape[:2]
                    self.ring.frame_buffer(handle.slot, w, h)[...] = img
                pts = self._pts(index)
                self.ring.stamp(handle.slot, stream=self.stream, frame=index, pts=pts, width=w, height=h)
                self.ready.put(Ticket(handle, self.stream, index, pts, w, h))
                self.decoded += 1
                self.notify("frame", self.stream, index)
                index += 1
        except Exception as exc:  # a broken source ends its stream, not the run
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.cap.release()
            self.notify("eos", self.stream, index)

    def _slot_for(self, index: int):
        if not self.info.live:
            while not self.stop.is_set():
                handle = self.allocator.acquire(timeout=0.1)
                if handle is not None:
                    return handle
            return None
        handle = self.allocator.try_acquire()
        if handle is not None:
            return handle
        oldest = self.ready.take()  # the oldest undispatched frame of this stream
        if oldest is None:
            return None
        self.dropped += 1
        self.notify("dropped", self.stream, oldest.frame)
        return self.allocator.renew(oldest.handle)

    def _pts(self, index: int) -> float:
        if self.info.live:
            return time.monotonic() - self._started_at
        msec = self.cap.get(cv2.CAP_PROP_POS_MSEC)
        if msec > 0 or index == 0:
            return round(msec / 1000.0, 6)
        return round(index / self.info.fps, 6)
