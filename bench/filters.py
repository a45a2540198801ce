"""The bench's filters: ordinary trusted Python filters, run unchanged by every system.

The naive loop, the naive multiprocessing pipeline and pipeless call the very
same functions on the very same frames, so "the same work" is literal. Each
one reports the seconds it spent (`work_s`) in its output, which lands in the
result under data.<filter name>; the bench subtracts that from the end-to-end
latency to get what the framework itself costs. Each also says whether the
image it was handed lives in shared memory (`shm`): in pipeless it must, since
a copy would be a byte copied that the accounting does not show.
"""

from __future__ import annotations

import mmap
import time
from typing import Any

import cv2
import numpy as np

from pipeless.filters.python.blur_faces import blur_faces
from pipeless.filters.python.draw_detections import draw_detections
from pipeless.workers.frame import Frame

_clock = time.perf_counter


def _on_shared_memory(image: np.ndarray) -> bool:
    """True when `image` is a view whose memory is an mmap (the ring's shared segment), not a copy."""
    base = image
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return isinstance(base, mmap.mmap) or (isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap))


def passthrough(frame: Frame, config: dict[str, Any]) -> dict[str, Any]:
    """Does nothing to the frame. Reports whether the frame it got is a view of shared memory."""
    t0 = _clock()
    shared = _on_shared_memory(frame.image)
    return {"work_s": _clock() - t0, "shm": shared}


def denoise(frame: Frame, config: dict[str, Any]) -> dict[str, float]:
    """The CPU-heavy workload: an edge-preserving bilateral denoise of the whole frame, in place.

    cv2.bilateralFilter cannot work in place, so it writes into a scratch
    image which is copied back; the same in every system. Its cost grows with
    the frame and with `d` (the neighbourhood diameter).
    """
    t0 = _clock()
    d = int(config.get("d", 7))
    sigma = float(config.get("sigma", 50.0))
    image = frame.image
    out = cv2.bilateralFilter(image, d, sigma, sigma)
    np.copyto(image, out)
    return {"work_s": _clock() - t0, "shm": _on_shared_memory(image)}


def grade(frame: Frame, config: dict[str, Any]) -> dict[str, float]:
    """The other CPU-heavy workload: a colour grade (gamma, then saturation) written in numpy, in place.

    Unlike OpenCV's filters, numpy's element-wise operations use one core, so
    a naive loop running it gets no help from library threads: this is the
    workload where spreading frames over processes is the only way to use
    more cores.
    """
    t0 = _clock()
    gamma = float(config.get("gamma", 0.8))
    saturation = float(config.get("saturation", 1.3))
    x = frame.image.astype(np.float32)
    x *= 1.0 / 255.0
    np.power(x, gamma, out=x)
    luma = (x[..., 0] * 0.114 + x[..., 1] * 0.587 + x[..., 2] * 0.299)[..., None]
    x -= luma
    x *= saturation
    x += luma
    x *= 255.0
    np.clip(x, 0.0, 255.0, out=x)
    np.copyto(frame.image, x, casting="unsafe")
    return {"work_s": _clock() - t0, "shm": _on_shared_memory(frame.image)}


def blur(frame: Frame, config: dict[str, Any]) -> dict[str, Any]:
    """The shipped blur_faces filter, timed."""
    t0 = _clock()
    out = blur_faces(frame, config)
    return {"work_s": _clock() - t0, "shm": _on_shared_memory(frame.image), **(out or {})}


def draw(frame: Frame, config: dict[str, Any]) -> dict[str, float]:
    """The shipped draw_detections filter, timed."""
    t0 = _clock()
    draw_detections(frame, config)
    return {"work_s": _clock() - t0, "shm": _on_shared_memory(frame.image)}


def work_seconds(data: dict[str, Any]) -> float:
    """Sum of the `work_s` every bench filter reported for one frame."""
    total = 0.0
    for value in data.values():
        if isinstance(value, dict):
            total += float(value.get("work_s", 0.0))
    return total
