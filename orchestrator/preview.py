"""Live MJPEG previews of the annotated frames, for operators' browsers.

Costs nothing while nobody watches. With a viewer, the router hands over at
most `max_fps` frames per stream: a downscaled copy is taken from the slot
(the slot is freed soon after, so the copy is needed) and a thread encodes
JPEG off the router's path.
"""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np

MAX_WIDTH = 640


class StreamPreview:
    def __init__(self) -> None:
        self.viewers = 0
        self.jpeg: bytes = b""
        self.seq = 0
        self.cond = threading.Condition()
        self.pending: np.ndarray | None = None
        self.last_offer = 0.0


class PreviewHub(threading.Thread):
    def __init__(self, max_fps: float = 10.0, quality: int = 80) -> None:
        super().__init__(name="preview", daemon=True)
        self.period = 1.0 / max_fps
        self.quality = quality
        self.streams: dict[str, StreamPreview] = {}
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._halt = False

    def _get(self, stream_id: str) -> StreamPreview:
        with self._lock:
            return self.streams.setdefault(stream_id, StreamPreview())

    def wants(self, stream_id: str) -> bool:
        """Router thread, per result: cheap check before any copy."""
        sp = self.streams.get(stream_id)
        return sp is not None and sp.viewers > 0 and time.monotonic() - sp.last_offer >= self.period

    def offer(self, stream_id: str, image: np.ndarray) -> None:
        """Router thread: copy (downscaled) while the slot is still ours; encoding happens elsewhere."""
        sp = self._get(stream_id)
        h, w = image.shape[:2]
        if w > MAX_WIDTH:
            copy = cv2.resize(image, (MAX_WIDTH, int(h * MAX_WIDTH / w)), interpolation=cv2.INTER_AREA)
        else:
            copy = image.copy()
        with self._work:
            sp.pending = copy
            sp.last_offer = time.monotonic()
            self._work.notify()

    def run(self) -> None:
        while True:
            with self._work:
                while not self._halt and not any(sp.pending is not None for sp in self.streams.values()):
                    self._work.wait()
                if self._halt:
                    return
                jobs = [(sp, sp.pending) for sp in self.streams.values() if sp.pending is not None]
                for sp, _ in jobs:
                    sp.pending = None
            for sp, image in jobs:
                ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
                if ok:
                    with sp.cond:
                        sp.jpeg = buf.tobytes()
                        sp.seq += 1
                        sp.cond.notify_all()

    def frames(self, stream_id: str, alive):
        """Yield JPEG frames for one viewer as they come (HTTP thread); stops when `alive()` is False."""
        sp = self._get(stream_id)
        with self._lock:
            sp.viewers += 1
        try:
            seen = 0
            while alive():
                with sp.cond:
                    if sp.seq == seen:
                        sp.cond.wait(1.0)
                    if sp.seq == seen:
                        continue
                    seen, jpeg = sp.seq, sp.jpeg
                yield jpeg
        finally:
            with self._lock:
                sp.viewers -= 1

    def stop(self) -> None:
        with self._work:
            self._halt = True
            self._work.notify_all()
        for sp in list(self.streams.values()):
            with sp.cond:
                sp.cond.notify_all()
