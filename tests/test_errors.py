"""What users get wrong at start: each is one line naming the thing, exit 2, nothing left behind."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from tests.conftest import MODELS, SAMPLE, leftovers, run_cli


def write(tmp_path, streams: str, inference: str = "") -> str:
    path = tmp_path / "p.toml"
    path.write_text(f"[pipeline]\nworkers = 1\n{streams}\n{inference}\n")
    return str(path)


STREAM = f'[[streams]]\nid = "cam"\ninput = "{SAMPLE}"\n'


@pytest.mark.parametrize("streams, inference, expected", [
    ('[[streams]]\nid = "cam"\ninput = "/dev/video9"\n', "",
     "pipeless: error: streams[0] (cam): camera /dev/video9 does not exist"),
    (STREAM, '[inference]\nmodel = "{bad}"\nadapter = "blazeface"\n',
     "pipeless: error: {bad}: not a loadable ONNX model"),
    (STREAM, f'[inference]\nmodel = "{MODELS / "blazeface-front-128.onnx"}"\nadapter = "centerface"\n'
             'input_size = [100, 100]\n',
     f"pipeless: error: {MODELS / 'blazeface-front-128.onnx'}: adapter 'centerface' does not fit this model"),
])
def test_one_line_errors(tmp_path, streams, inference, expected):
    bad = tmp_path / "model.onnx"
    bad.write_text("this is not a model")
    cfg = write(tmp_path, streams, inference.replace("{bad}", str(bad)))
    proc = run_cli("-c", cfg)
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("pipeless: error")]
    assert len(lines) == 1 and lines[0].startswith(expected.replace("{bad}", str(bad))), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not leftovers(proc.pid)


def test_unreachable_stream_url_is_one_line(tmp_path):
    cfg = write(tmp_path, '[[streams]]\nid = "door"\ninput = "rtsp://127.0.0.1:9/cam"\n')
    proc = run_cli("-c", cfg)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "pipeless: error: streams[0] (door): cannot open rtsp://127.0.0.1:9/cam")


def test_progress_line_on_a_terminal(tmp_path):
    cfg = write(tmp_path, STREAM)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pipeless.orchestrator.cli", "-c", cfg], stdin=follower,
                            stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=60)
    os.close(leader)
    text = out.decode(errors="replace")
    assert proc.returncode == 0
    assert "\rcam 120/120 (100%)" in text.replace("\x1b[K", "")
