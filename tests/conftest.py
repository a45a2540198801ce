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
    return subprocess.run([sys.executable, "-m", "pipeless.orchestrator.cli", *args], capture_output=True,
                          text=True, timeout=timeout, **kw)


def shm_segments() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith("pipeless-")}
