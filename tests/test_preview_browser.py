"""A real headless Chromium opens a running pipeline's MJPEG preview and its index page; the screenshots
must show a real frame of the clip, annotated by the pipeline.

An MJPEG stream never finishes loading, so Chromium's `--screenshot` alone would wait forever:
`--timeout=MS` stops the load after MS and takes the screenshot of what is on screen then. The
detections are drawn in magenta (a colour the clip never has), so the picture is the pipeline's
output, not merely the source.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import SAMPLE
from tests.live import LivePipeline, free_port, live_config

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian: apt install chromium)")

MAGENTA = (255, 0, 255)  # BGR, the box colour given to draw_detections
W, H = 176, 144  # samples/carphone.mp4


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    port = free_port()
    boxes = f"""[[filters]]
name = "boxes"
function = "pipeless.filters.python.draw_detections:draw_detections"
config = {{ color = {list(MAGENTA)}, thickness = 2 }}
"""
    pipeline = LivePipeline(live_config(tmp_path_factory.mktemp("preview"), port, sections=boxes),
                            f"http://127.0.0.1:{port}")
    yield pipeline
    pipeline.stop_cleanly()


@pytest.fixture(scope="module")
def source_frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(SAMPLE))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) == 120 and frames[0].shape == (H, W, 3)
    return frames


def screenshot(url: str, out: Path, size=(400, 300), load_ms: int = 3000) -> np.ndarray:
    """Chromium headless: load `url` for `load_ms` (an MJPEG page never finishes), then screenshot it."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--hide-scrollbars", f"--user-data-dir={out.parent / 'chromium-profile'}", f"--timeout={load_ms}",
           f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # Chromium and its zygote/renderers: its own process group
            proc.wait()
    assert out.exists(), f"chromium wrote no screenshot (exit {proc.returncode}):\n{log[-3000:]}"
    image = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (size[1], size[0]), (out, None if image is None else image.shape)
    return image


def corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def identify(region: np.ndarray, frames: list[np.ndarray]) -> tuple[int, float, float]:
    """The source frame the region shows: (index, correlation, mean absolute difference per channel value)."""
    scores = [corr(region, f) for f in frames]
    best = int(np.argmax(scores))
    return best, scores[best], float(np.abs(region.astype(int) - frames[best].astype(int)).mean())


def magenta_pixels(region: np.ndarray) -> int:
    b, g, r = (region[..., i].astype(int) for i in range(3))
    return int(((b > 180) & (r > 180) & (g < 90)).sum())


def assert_shows_a_frame(region: np.ndarray, frames: list[np.ndarray]) -> int:
    assert region.shape == (H, W, 3)
    assert region.std() > 20, "the preview is blank"
    index, score, mad = identify(region, frames)
    assert score > 0.93 and mad < 14, (index, score, mad)
    # a control: the same frame upside down correlates far worse, so the match is no accident of colours
    assert corr(region, frames[index][::-1]) < score - 0.2
    assert magenta_pixels(region) > 40, "no detection box drawn: not the pipeline's annotated output"
    assert magenta_pixels(frames[index]) == 0
    return index


def test_mjpeg_preview_in_chromium(live, source_frames, tmp_path):
    shot = tmp_path / "preview.png"
    image = screenshot(f"{live.url}/streams/cam/preview.mjpg", shot)
    # Chromium shows a lone image at its own size, centred on a dark background
    background = image[0, 0].copy()
    assert (image[:5, :5] == background).all() and background.max() < 40
    ys, xs = np.where(np.abs(image.astype(int) - background.astype(int)).sum(axis=2) > 0)
    top, left = ys.min(), xs.min()
    assert (ys.max() - top + 1, xs.max() - left + 1) == (H, W), (top, left, ys.max(), xs.max())
    assert (left, top) == ((400 - W) // 2, (300 - H) // 2)
    assert_shows_a_frame(image[top:top + H, left:left + W], source_frames)


def test_index_page_in_chromium(live, source_frames, tmp_path):
    shot = tmp_path / "index.png"
    image = screenshot(f"{live.url}/", shot)
    # find the <img> on the page: where the clip's first frames match best
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    best = max((cv2.minMaxLoc(cv2.matchTemplate(gray, cv2.cvtColor(f, cv2.COLOR_BGR2GRAY),
                                                cv2.TM_CCOEFF_NORMED))[1:4:2] for f in source_frames[::8]),
               key=lambda m: m[0])
    score, (x, y) = best
    assert score > 0.8, score
    assert_shows_a_frame(image[y:y + H, x:x + W], source_frames)
    # the page around it: white, with the heading and caption in dark text above and below the image
    assert (image[:5, -5:] > 240).all()
    assert (image[:y - 5] < 80).any() and (image[y + H + 2:] < 80).any()
