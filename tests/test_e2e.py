"""The demo and real runs with the face detector, checked frame by frame."""

from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest

from pipeless.orchestrator.config import load
from pipeless.orchestrator.run import run_pipeline
from pipeless.orchestrator.stats import Stats
from tests.conftest import MODELS, ROOT, SAMPLE, leftovers, run_cli, video_frames
from tests.filters.testing_filters import BITS, read_index


def sharpness(img: np.ndarray, box) -> float:
    x1, y1, x2, y2 = (int(v) for v in box)
    roi = cv2.cvtColor(img[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(roi, cv2.CV_64F).var())


def demo_copy(tmp_path) -> str:
    text = (ROOT / "configs" / "demo.toml").read_text()
    text = text.replace("../samples/", f"{ROOT}/samples/").replace("../models/", f"{ROOT}/models/")
    text = text.replace('"../filters/', f'"{ROOT}/filters/')
    text = text.replace('publish = "tcp://127.0.0.1:5555"', "")
    path = tmp_path / "configs" / "demo.toml"
    path.parent.mkdir()
    path.write_text(text)
    return str(path)


def test_demo_blurs_every_face_and_reports_every_frame(tmp_path):
    proc = run_cli("-c", demo_copy(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    provider_lines = [l for l in proc.stderr.splitlines() if l.startswith("inference:")]
    assert len(provider_lines) == 1 and "ExecutionProvider" in provider_lines[0]
    results = [json.loads(l) for l in open(tmp_path / "out" / "demo.jsonl")]
    assert [r["frame"] for r in results] == list(range(120))
    with_face = [r for r in results if r["detections"]]
    assert len(with_face) >= 0.95 * 120
    for r in with_face:
        for d in r["detections"]:
            x1, y1, x2, y2 = d["box"]
            assert 0 <= x1 < x2 <= 176 and 0 <= y1 < y2 <= 144
            assert 20 <= x2 - x1 <= 150 and d["label"] == "face" and 0.5 <= d["score"] <= 1
    source, output = video_frames(SAMPLE), video_frames(tmp_path / "out" / "demo.mp4")
    assert len(output) == 120
    blurred = 0
    for r in with_face:
        box = r["detections"][0]["box"]
        x1, y1, x2, y2 = box
        inner = (x1 + 6, y1 + 6, x2 - 6, y2 - 6)  # inside the drawn rectangle
        if sharpness(output[r["frame"]], inner) < 0.3 * sharpness(source[r["frame"]], inner):
            blurred += 1
    assert blurred >= 0.95 * len(with_face)
    assert not leftovers(proc.pid)


def make_stamped_clip(path, frames: int, size=(640, 480)) -> None:
    """A long clip never seen before: the sample looped and upscaled, each frame stamped with its index."""
    src = video_frames(SAMPLE)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, size)
    for i in range(frames):
        img = cv2.resize(src[(i // 120) % 2 and 119 - i % 120 or i % 120], size)
        block = size[0] // BITS
        for bit in range(BITS):
            img[:block // 2, bit * block:(bit + 1) * block] = 255 if (i >> bit) & 1 else 0
        writer.write(img)
    writer.release()


def read_stamp(img: np.ndarray) -> int:
    block = img.shape[1] // BITS
    return read_index(np.vstack([img[:block // 2], img[:block // 2]]))


def test_long_unseen_clip_every_frame_once_in_order(tmp_path):
    clip = tmp_path / "long.mp4"
    make_stamped_clip(clip, 300)
    cfg = tmp_path / "p.toml"
    cfg.write_text(f"""
[pipeline]
workers = 2
slots = 12
[[streams]]
id = "long"
input = "{clip}"
output = "out/long.mp4"
[inference]
model = "{MODELS / 'blazeface-front-128.onnx'}"
adapter = "blazeface"
[[filters]]
name = "blur"
function = "pipeless.filters.python.blur_faces:blur_faces"
[results]
file = "out/r.jsonl"
""")
    proc = run_cli("-c", str(cfg))
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(l) for l in open(tmp_path / "out" / "r.jsonl")]
    assert [r["frame"] for r in results] == list(range(300))
    assert all(r["width"] == 640 and r["height"] == 480 for r in results)
    assert sum(1 for r in results if r["detections"]) >= 0.9 * 300
    out = video_frames(tmp_path / "out" / "long.mp4")
    assert [read_stamp(img) for img in out] == list(range(300))


def test_two_streams_share_batches(tmp_path):
    cfg_path = tmp_path / "p.toml"
    cfg_path.write_text(f"""
[pipeline]
workers = 2
[[streams]]
id = "a"
input = "{SAMPLE}"
[[streams]]
id = "b"
input = "{SAMPLE}"
[inference]
model = "{MODELS / 'centerface.onnx'}"
adapter = "centerface"
input_size = [160, 128]
batch_size = 8
batch_timeout_ms = 20
[results]
file = "out/r.jsonl"
""")
    stats = Stats()
    summary = run_pipeline(load(cfg_path), threading.Event(), stats)
    assert summary.completed and summary.frames == {"a": 120, "b": 120}
    results = [json.loads(l) for l in open(tmp_path / "out" / "r.jsonl")]
    for sid in ("a", "b"):
        mine = [r for r in results if r["stream"] == sid]
        assert [r["frame"] for r in mine] == list(range(120))
        assert sum(1 for r in mine if r["detections"]) >= 0.9 * 120
    assert max(stats.batch_sizes) > 1
    assert any(streams == {"a", "b"} for streams in stats.batch_streams.values())


def test_wasm_demo_gives_the_same_results_as_the_python_filters(tmp_path):
    """The demo's wasm blur and boxes against the trusted Python twins: the same 120 results."""
    wasm_cfg = demo_copy(tmp_path)
    text = open(wasm_cfg).read()
    assert 'kind = "wasm"' in text
    python_text = text.replace(f'kind = "wasm"\npath = "{ROOT}/filters/c/blur_faces.wasm"',
                               'kind = "python"\nfunction = "pipeless.filters.python.blur_faces:blur_faces"')
    python_text = python_text.replace(f'kind = "wasm"\npath = "{ROOT}/filters/c/draw_detections.wasm"',
                                      'kind = "python"\nfunction = '
                                      '"pipeless.filters.python.draw_detections:draw_detections"')
    python_text = python_text.replace("out/demo", "out/python")
    assert 'kind = "wasm"' not in python_text
    python_cfg = tmp_path / "configs" / "python.toml"
    python_cfg.write_text(python_text)
    for cfg in (wasm_cfg, python_cfg):
        proc = run_cli("-c", str(cfg))
        assert proc.returncode == 0, proc.stderr
    wasm = [json.loads(l) for l in open(tmp_path / "out" / "demo.jsonl")]
    python = [json.loads(l) for l in open(tmp_path / "out" / "python.jsonl")]
    strip = lambda rs: [(r["frame"], r["detections"], r.get("errors")) for r in rs]  # noqa: E731
    assert strip(wasm) == strip(python) and len(wasm) == 120


def test_stateful_wasm_tracker_follows_the_face_in_order_with_two_workers(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text(f"""
[pipeline]
workers = 2
[[streams]]
id = "cam"
input = "{SAMPLE}"
[inference]
model = "{MODELS / 'blazeface-front-128.onnx'}"
adapter = "blazeface"
[[filters]]
name = "jitter"
function = "{ROOT / 'tests' / 'filters' / 'testing_filters.py'}:stamp_index"
config = {{ jitter_ms = 3 }}
[[filters]]
name = "tracker"
kind = "wasm"
stateful = true
path = "{ROOT / 'filters' / 'c' / 'face_tracker.wasm'}"
[results]
file = "out/r.jsonl"
""")
    proc = run_cli("-c", str(cfg))
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(l) for l in open(tmp_path / "out" / "r.jsonl")]
    assert [r["frame"] for r in results] == list(range(120))
    tracker = [r["data"]["tracker"] for r in results]
    assert [t["frame"] for t in tracker] == list(range(120))  # the one instance saw frames in order
    events = [(t["frame"], e["event"], e["id"]) for t in tracker for e in t["events"]]
    assert events[0] == (0, "enter", 1)
    assert {i for _, _, i in events} == {1}  # one face, one track, never lost for long
    assert all(t["tracks"] and t["tracks"][0]["id"] == 1 for t in tracker[:100])
