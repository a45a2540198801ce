"""Shared fixtures: the project's own copies of the real clip and models, and a config writer."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "carphone.mp4"
MODELS = ROOT / "models"
TEST_FILTERS = Path(__file__).resolve().parent / "filters"


@pytest.fixture
def write_config(tmp_path):
    """Write a pipeline.toml into tmp_path from a dedented string and return its path."""

    def write(text: str, name: str = "pipeline.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


def run_cli(*args: str, timeout: float = 180, **kw) -> subprocess.CompletedProcess:
    """Run pipeless-orch; the result also carries `.pid`, to look for anything the run left behind."""
    with subprocess.Popen([sys.executable, "-m", "pipeless.orchestrator.cli", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kw) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    done.pid = proc.pid
    return done


def video_frames(path):
    """Every frame of a video file, decoded with OpenCV."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            return frames
        frames.append(img)


def shm_segments() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith("pipeless-")}


def leftovers(pid: int) -> list[str]:
    """Shared-memory segments and socket folders that a finished run with this pid left behind."""
    found = [n for n in os.listdir("/dev/shm") if n.startswith(f"pipeless-{pid}-")]
    runtime = os.path.join(os.environ.get("XDG_RUNTIME_DIR") or "/tmp", f"pipeless-{pid}")
    if os.path.exists(runtime):
        found.append(runtime)
    return found
