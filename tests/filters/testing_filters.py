"""Filters used by the tests to make real pipelines misbehave in controlled ways."""

from __future__ import annotations

import os
import time

import numpy as np

BITS = 10  # frame index stamped as 10 black/white blocks: survives lossy video encoding


def stamp_index(frame, config):
    """Write the frame index into the top rows as blocks, after a jitter that reorders completion."""
    delay_ms = config.get("jitter_ms", 0)
    if delay_ms:
        time.sleep(((frame.index * 7919) % 5) * delay_ms / 1000.0)
    block = frame.image.shape[1] // BITS
    for bit in range(BITS):
        value = 255 if (frame.index >> bit) & 1 else 0
        frame.image[: block, bit * block:(bit + 1) * block] = value
    return {"pid": os.getpid()}


def read_index(image: np.ndarray) -> int:
    block = image.shape[1] // BITS
    index = 0
    for bit in range(BITS):
        cell = image[2: block - 2, bit * block + 2:(bit + 1) * block - 2]
        if cell.mean() > 127:
            index |= 1 << bit
    return index


def crash_once(frame, config):
    """Kill the worker process the first time it sees frame `at` (a marker file says it happened)."""
    marker = config["marker"]
    if frame.index == config["at"] and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)
    return None


def crash_always(frame, config):
    """Kill the worker process every time it sees frame `at` (a poison frame)."""
    if frame.index == config["at"]:
        os._exit(3)
    return None


def opencv_threads(frame, config):
    """Reports the size of OpenCV's thread pool in the worker that ran it."""
    import cv2

    return {"threads": cv2.getNumThreads(), "pid": os.getpid()}


def slow(frame, config):
    time.sleep(config.get("ms", 20) / 1000.0)
    return None


def always_fails(frame, config):
    raise RuntimeError(f"no luck on frame {frame.index}")


_last_seen: dict[str, int] = {}


def order_checker(frame, config):
    """Stateful: remembers the last frame index per stream and fails if frames ever come out of order."""
    previous = _last_seen.get(frame.stream, -1)
    if frame.index <= previous:
        raise RuntimeError(f"frame {frame.index} after {previous}")
    _last_seen[frame.stream] = frame.index
    return {"previous": previous, "pid": os.getpid()}
