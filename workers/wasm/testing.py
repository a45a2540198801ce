"""Helpers for the wasm tests and the bench: real frames from the sample clip, paths, detections."""

from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from pipeless.orchestrator.config import FilterConfig
from pipeless.protocol.messages import Detection

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "carphone.mp4"
FILTERS = ROOT / "filters"
WIT = ROOT / "wit"
WIT_JSON = Path(__file__).resolve().parent / "wit.json"
LANGS = ("c", "rust")
SHIPPED = ("blur_faces", "draw_detections", "letterbox", "face_tracker")


@lru_cache(maxsize=1)
def _frames() -> tuple[np.ndarray, ...]:
    cap = cv2.VideoCapture(str(SAMPLE))
    out = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    if not out:
        raise RuntimeError(f"cannot read frames from {SAMPLE}")
    return tuple(out)


def frames(n: int | None = None) -> list[np.ndarray]:
    """Copies of the sample clip's first n decoded frames (176x144 BGR, one face)."""
    f = _frames()
    return [x.copy() for x in (f if n is None else f[:n])]


def detections(i: int) -> list[Detection]:
    """Detections for frame i: the face (drifting), a box half outside the frame, none on frames 20-29."""
    if 20 <= i < 30:
        return []
    dx = float((i % 7) - 3)
    return [
        Detection("face", 0.87, [50.0 + dx, 22.5, 120.7 + dx, 110.2]),
        Detection("hand", 0.4, [-5.5, 100.0, 30.0, 150.0]),
    ]


def component(lang: str, name: str) -> Path:
    return FILTERS / lang / f"{name}.wasm"


def config(name: str, path: Path, kind: str = "wasm", **kw) -> FilterConfig:  # type: ignore[no-untyped-def]
    return FilterConfig(name=name, kind=kind, path=str(path), **kw)


def wasm_tools() -> str | None:
    return shutil.which("wasm-tools")
