"""One thread per stream decoding straight into free ring slots, and keeping the source alive.

`VideoCapture.read(dst)` decodes into the slot's own memory, so a frame is
written once and never copied again. Files are lossless: the decoder waits
for a free slot. Live sources never fall behind: when the ring is full the
stream's oldest frame that is still waiting for dispatch is dropped and its
slot reused; if every frame of the stream is already being processed, the
new frame is grabbed and discarded instead. Either way the drop is counted
and reported, so the frame order downstream skips it instead of waiting.

When a source fails or ends, the stream's restart policy decides: reconnect
(exponential backoff up to `reconnect_max_s`) or end. Frame indices keep
counting across reconnects, so a stream's results stay one sequence. State
changes are logged once each, never once per try.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

import cv2

from pipeless.orchestrator.config import StreamConfig
from pipeless.orchestrator.sources import SourceError, SourceInfo, open_capture, probe
from pipeless.orchestrator.ticket import Ticket
from pipeless.shm.allocator import SlotAllocator

log = logging.getLogger("pipeless")

FIRST_BACKOFF_S = 0.25


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


Notify = Callable[[str, int, int], None]


class Decoder(threading.Thread):
    """Decodes one stream; calls `notify(event, stream, index)` for "frame", "dropped", "lost", "missed" (index =
    frames missed while disconnected) and "eos"."""

    def __init__(self, stream: int, cfg: StreamConfig, cap: cv2.VideoCapture, info: SourceInfo,
                 allocator: SlotAllocator, ready: ReadyQueue, notify: Notify,
                 stop: threading.Event) -> None:
        super().__init__(name=f"decode-{cfg.id}", daemon=True)
        self.stream = stream
        self.cfg = cfg
        self.cap: cv2.VideoCapture | None = cap
        self.info = info
        self.allocator = allocator
        self.ring = allocator.ring
        self.ready = ready
        self.notify = notify
        self.stop = stop  # the whole run's
        self.halt = threading.Event()  # this stream's alone (removed through the control API)
        self.decoded = 0
        self.dropped = 0
        self.reconnects = 0
        self.connected = True
        self.error = ""
        self._started_at = time.monotonic()
        self._index = 0
        self._connected_at = 0  # the frame index this connection started at

    @property
    def stopping(self) -> bool:
        return self.stop.is_set() or self.halt.is_set()

    def run(self) -> None:
        try:
            while not self.stopping:
                reason = self._decode_until_failure()
                if self.stopping:
                    break
                policy = self.cfg.restart_policy
                if policy == "never" or (policy == "on-error" and reason == "eos") or (
                        policy == "on-eos" and reason == "error"):
                    break
                if not self._reconnect(reason):
                    break
        except Exception as exc:  # a broken source ends its stream, not the run
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            if self.cap is not None:
                self.cap.release()
            self.notify("eos", self.stream, self._index)

    # -- decoding ------------------------------------------------------------
    def _decode_until_failure(self) -> str:
        """Decode frames until the source ends ("eos") or fails ("error"), or the stream stops."""
        assert self.cap is not None
        while not self.stopping:
            handle = self._slot_for(self._index)
            if handle is None:
                if self.stopping:
                    break
                # live, every slot busy with this stream's frames in flight: skip one frame
                if not self.cap.grab():
                    return self._failure()
                self._drop(self._index)
                self._index += 1
                continue
            w, h = self.info.width, self.info.height
            buf = self.ring.frame_buffer(handle.slot, w, h)
            ok, img = self.cap.read(buf)
            if not ok or img is None:
                self.allocator.release(handle)
                return self._failure()
            if img is not buf:  # the source changed resolution: copy if it still fits the slot
                h, w = img.shape[:2]
                self.ring.frame_buffer(handle.slot, w, h)[...] = img
            pts = self._pts(self._index)
            self.ring.stamp(handle.slot, stream=self.stream, frame=self._index, pts=pts, width=w, height=h)
            self.ready.put(Ticket(handle, self.stream, self._index, pts, w, h))
            self.decoded += 1
            self.notify("frame", self.stream, self._index)
            self._index += 1
        return "stopped"

    def _failure(self) -> str:
        """Why reading stopped. A file ends. A live source fails, unless it announced its length and
        delivered it: a file served over HTTP reached its end, which is no outage to warn about or to
        count missed frames for (1 frame of slack: container frame counts can be off by one)."""
        if not self.info.live:
            return "eos"
        delivered = self._index - self._connected_at
        return "eos" if self.info.announced > 0 and delivered >= self.info.announced - 1 else "error"

    def _drop(self, index: int) -> None:
        self.dropped += 1
        self.notify("dropped", self.stream, index)

    def _slot_for(self, index: int):
        if not self.info.live:
            while not self.stopping:
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
        self._drop(oldest.frame)
        return self.allocator.renew(oldest.handle)

    def _pts(self, index: int) -> float:
        if self.info.live:
            return round(time.monotonic() - self._started_at, 6)
        msec = self.cap.get(cv2.CAP_PROP_POS_MSEC) if self.cap is not None else 0.0
        if msec > 0 or index == 0:
            return round(msec / 1000.0, 6)
        return round(index / self.info.fps, 6)

    # -- reconnecting ----------------------------------------------------------
    def _reconnect(self, reason: str) -> bool:
        """Reopen the source with exponential backoff; False when the stream stopped meanwhile."""
        if self.cap is not None:
            self.cap.release()
            self.cap = None
        self.connected = False
        lost_at = time.monotonic()
        self.notify("lost", self.stream, self._index)
        if reason == "eos":  # a looping file: said once, not at every loop
            (log.debug if self.reconnects else log.info)(
                "pipeless: stream %s reached its end; restarting it (restart = %s)", self.cfg.id,
                self.cfg.restart_policy)
        else:
            log.warning("pipeless: stream %s lost its source; reconnecting", self.cfg.id)
        wait, tries, last_error = FIRST_BACKOFF_S, 0, ""
        while not self.stopping:
            tries += 1
            try:
                cap = open_capture(self.cfg.input)
                info = probe(cap, self.cfg.input)
                self.ring.frame_buffer(0, info.width, info.height)  # still fits a slot?
            except (SourceError, ValueError) as exc:
                if str(exc) != last_error:
                    log.warning("pipeless: stream %s: %s (retrying up to every %.0f s)",
                                self.cfg.id, exc, self.cfg.reconnect_max_s)
                    last_error = str(exc)
                self._sleep(wait)
                wait = min(wait * 2, self.cfg.reconnect_max_s)
                continue
            self.cap, self.info = cap, info
            self.connected = True
            self.reconnects += 1
            self._connected_at = self._index
            if reason != "eos":
                down = time.monotonic() - lost_at
                log.warning("pipeless: stream %s reconnected after %d tries (%.1f s)", self.cfg.id, tries, down)
                self.notify("missed", self.stream, int(down * self.info.fps))  # what the camera sent meanwhile
            return True
        return False

    def _sleep(self, seconds: float) -> None:
        """Wait, but wake at once when the run or this stream stops."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.05, seconds))
