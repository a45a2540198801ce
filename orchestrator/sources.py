"""Opening video sources with OpenCV, and saying clearly why one cannot be opened."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import cv2

from pipeless.orchestrator.config import is_live


NETWORK_TIMEOUT_MS = 5000  # a stalled network source fails after this long, then reconnects


class SourceError(Exception):
    """A one-line reason a stream's input cannot be opened or read."""


@dataclass(frozen=True)
class SourceInfo:
    width: int
    height: int
    fps: float
    live: bool
    announced: int  # the length the source announces, live ones too (a file served over HTTP); 0: none

    @property
    def frames(self) -> int:
        """The stream's length as progress counts it: 0 (unknown) for live sources, whatever they announce."""
        return 0 if self.live else self.announced


def open_capture(source: str) -> cv2.VideoCapture:
    """Open a file, URL or camera; webcams by index (/dev/video0 or 0), network streams through FFmpeg."""
    device = re.fullmatch(r"/dev/video(\d+)", source)
    if device or source.isdigit():
        index = int(device.group(1) if device else source)
        if device and not os.path.exists(source):
            raise SourceError(f"camera {source} does not exist")
        cap = cv2.VideoCapture(index, cv2.CAP_V4L2)
    elif "://" in source:
        # RTSP over TCP: a camera that goes away is noticed at once (UDP only times out).
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
        cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, NETWORK_TIMEOUT_MS,
                                                        cv2.CAP_PROP_READ_TIMEOUT_MSEC, NETWORK_TIMEOUT_MS])
    else:
        if not os.path.isfile(source):
            raise SourceError(f"no such file: {source}")
        cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"cannot open {source} (unsupported format, unreachable URL or busy camera)")
    return cap


def probe(cap: cv2.VideoCapture, source: str) -> SourceInfo:
    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width <= 0 or height <= 0:
        raise SourceError(f"{source} reports no frame size")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    if not 0.5 < fps < 1000:
        fps = 25.0
    return SourceInfo(width, height, fps, is_live(source), max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)))
