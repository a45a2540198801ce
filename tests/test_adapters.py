"""Adapters and providers on the real models and the real clip.

Nothing here hard-codes a detection: the face detectors must find the one
face in samples/carphone.mp4 frame after frame, agree with each other, and
keep their boxes stable; YOLO decoding is checked on hand-built outputs whose
answer is computed independently.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeless.orchestrator.config import InferenceSection
from pipeless.protocol.messages import Detection, ModelInput
from pipeless.workers.inference.adapters import Adapter, get_adapter
from pipeless.workers.inference.adapters.blazeface import anchor_centres
from pipeless.workers.inference.letterbox import geometry, letterbox_into
from pipeless.workers.inference.providers import ModelLoadError, describe, open_session

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
SAMPLE = ROOT / "samples" / "carphone.mp4"
W, H = 176, 144


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(SAMPLE))
    out = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    assert len(out) == 120 and out[0].shape == (H, W, 3)
    return out


def load(adapter_name: str, model: str, **cfg_kw):
    cfg = InferenceSection(model=str(MODELS / model), adapter=adapter_name, **cfg_kw)
    adapter = get_adapter(adapter_name)
    session, provider = open_session(adapter.prepare(cfg.model), cfg.providers)
    spec = adapter.model_input(session, cfg)
    return adapter, session, provider, spec, cfg


def run_frames(adapter: Adapter, session, spec: ModelInput, cfg: InferenceSection,
               images: list[np.ndarray], batch: int) -> list[list[Detection]]:
    """What the worker + inference processes do: letterbox each frame into its tensor, batch, run, decode."""
    out: list[list[Detection]] = []
    tensors = np.zeros((batch,) + spec.shape, np.float32)
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        sizes = []
        for j, img in enumerate(chunk):
            letterbox_into(img, tensors[j], spec)
            sizes.append((img.shape[1], img.shape[0]))
        if spec.max_batch == 1:  # fixed batch 1: run one by one, concatenate on dim 0
            per = [session.run(None, {spec.name: tensors[j:j + 1]}) for j in range(len(chunk))]
            outputs = [np.concatenate(parts, axis=0) for parts in zip(*per)]
        else:
            outputs = session.run(None, {spec.name: tensors[:len(chunk)]})
        dets = adapter.decode(outputs, sizes, spec, cfg)
        assert len(dets) == len(chunk)
        out.extend(dets)
    return out


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def check_faces(dets: list[list[Detection]], min_found: float) -> list[list[float]]:
    """The clip has exactly one face: found often, one box, inside the frame, face-sized, steady."""
    found = [d for d in dets if d]
    assert len(found) >= min_found * len(dets), f"face found in {len(found)}/{len(dets)} frames"
    assert all(len(d) == 1 for d in dets), "more than one face reported in a one-face clip"
    boxes = [d[0].box for d in found]
    for b, d in zip(boxes, found):
        assert d[0].label == "face" and 0.0 < d[0].score <= 1.0
        assert 0 <= b[0] < b[2] <= W and 0 <= b[1] < b[3] <= H
        bw, bh = b[2] - b[0], b[3] - b[1]
        assert 25 <= bw <= 110 and 25 <= bh <= 110, f"implausible face size {bw:.0f}x{bh:.0f}"
        assert 0.6 <= bw / bh <= 1.6
    steady = [iou(a, b) for a, b in zip(boxes, boxes[1:])]
    assert np.median(steady) > 0.8, "boxes jump between consecutive frames"
    return [d[0].box if d else [] for d in dets]


@pytest.fixture(scope="module")
def blazeface_boxes(frames) -> list[list[float]]:
    adapter, session, provider, spec, cfg = load("blazeface", "blazeface-front-128.onnx")
    assert (spec.width, spec.height, spec.layout, spec.color, spec.max_batch) == (128, 128, "NHWC", "RGB", 1)
    return check_faces(run_frames(adapter, session, spec, cfg, frames, batch=4), 0.95)


def test_blazeface_front_finds_the_face(blazeface_boxes) -> None:
    # The face sits in the middle of the frame in the clip: its box centre must too.
    centres = np.array([[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] for b in blazeface_boxes if b])
    assert np.all((centres[:, 0] > W * 0.2) & (centres[:, 0] < W * 0.8))
    assert np.all((centres[:, 1] > H * 0.2) & (centres[:, 1] < H * 0.8))


def test_blazeface_back_finds_the_face(frames, blazeface_boxes) -> None:
    adapter, session, _, spec, cfg = load("blazeface", "blazeface-back-256.onnx")
    assert (spec.width, spec.height) == (256, 256)
    idx = list(range(0, 120, 3))
    boxes = check_faces(run_frames(adapter, session, spec, cfg, [frames[i] for i in idx], batch=1), 0.95)
    agree = [iou(a, blazeface_boxes[i]) for a, i in zip(boxes, idx) if a and blazeface_boxes[i]]
    assert np.median(agree) > 0.6


def test_blazeface_input_range_is_minus_one_to_one(frames) -> None:
    """The measurement behind the adapter's [-1, 1]: it keeps finding a shrunken face where [0, 1] does not."""
    adapter, session, _, spec, cfg = load("blazeface", "blazeface-front-128.onnx", score_threshold=0.5)
    assert (spec.scale, spec.offset) == pytest.approx((1 / 127.5, -1.0))
    as01 = ModelInput(spec.name, spec.width, spec.height, spec.layout, spec.color, 1 / 255, 0.0, max_batch=1)
    small = []
    for f in frames[::12]:
        canvas = np.zeros_like(f)
        s = cv2.resize(f, None, fx=0.4, fy=0.4)
        canvas[:s.shape[0], :s.shape[1]] = s
        small.append(canvas)
    def top_scores(sp: ModelInput) -> np.ndarray:
        low = InferenceSection(model=cfg.model, adapter="blazeface", score_threshold=0.01)
        dets = run_frames(adapter, session, sp, low, small, batch=1)
        return np.array([max((d.score for d in ds), default=0.0) for ds in dets])
    ours, other = top_scores(spec), top_scores(as01)
    assert ours.mean() > other.mean() + 0.1 and np.mean(ours > other) >= 0.8


def test_anchor_layout() -> None:
    a = anchor_centres(128, 128, (512, 384))
    assert a.shape == (896, 2)
    assert a[0].tolist() == a[1].tolist() == [4.0, 4.0]  # 16x16 grid, stride 8, 2 per cell
    assert a[2].tolist() == [12.0, 4.0]
    assert a[512].tolist() == a[517].tolist() == [8.0, 8.0]  # 8x8 grid, stride 16, 6 per cell
    assert a[-1].tolist() == [120.0, 120.0]
    assert anchor_centres(256, 256, (512, 384))[512].tolist() == [16.0, 16.0]


def test_centerface_dynamic_batch_agrees_with_blazeface(frames, blazeface_boxes) -> None:
    adapter, session, provider, spec, cfg = load("centerface", "centerface.onnx", input_size=[192, 160])
    assert (spec.width, spec.height, spec.layout, spec.color, spec.max_batch) == (192, 160, "NCHW", "BGR", 0)
    assert session.get_inputs()[0].shape[0] == "batch"
    dets = run_frames(adapter, session, spec, cfg, frames, batch=4)
    boxes = check_faces(dets, 0.90)
    both = [(a, b) for a, b in zip(boxes, blazeface_boxes) if a and b]
    overlap = [iou(a, b) > 0.3 for a, b in both]
    assert sum(overlap) >= 0.9 * len(both)
    # A batch of 4 decodes exactly as the same frames run one at a time.
    single = run_frames(adapter, session, spec, cfg, frames[:4], batch=1)
    for a, b in zip(single, dets[:4]):
        assert len(a) == len(b)
        np.testing.assert_allclose([d.box for d in a], [d.box for d in b], atol=0.05)
    # The rewritten model is opened from bytes, yet the log line still names the file.
    assert describe(session, provider, spec=spec) == (
        f"inference: centerface.onnx on {provider} (input batchx3x160x192, dynamic batch)")


def test_centerface_sizes() -> None:
    adapter, session, *_ = load("centerface", "centerface.onnx")
    spec = adapter.model_input(session, InferenceSection(model="m", adapter="centerface"))
    assert (spec.width, spec.height) == (640, 480)  # documented default
    spec = adapter.model_input(session, InferenceSection(model="m", adapter="centerface", input_size=[170, 100]))
    assert (spec.width, spec.height) == (192, 128)  # rounded up to the network stride


def letterboxed(box_src: list[float], g) -> list[float]:
    """Independent forward mapping of a source box into model-input pixels, as cx, cy, w, h."""
    x1, y1, x2, y2 = box_src
    x1, x2 = x1 * g.scale_x + g.pad_x, x2 * g.scale_x + g.pad_x
    y1, y2 = y1 * g.scale_y + g.pad_y, y2 * g.scale_y + g.pad_y
    return [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]


YOLO_SPEC = ModelInput("images", 640, 640, "NCHW", "RGB", 1 / 255, 0.0, pad_value=114)
LABELS = ["person", "car", "dog"]
SIZES = [(1280, 720), (480, 640)]  # a landscape and a portrait frame in one batch

# Per frame: (source box, objectness, class scores). Expectations follow from the rules, not from the code.
CASES = [
    [
        ([100, 200, 300, 400], 0.9, [0.1, 0.95, 0.0]),   # car, 0.855 -> kept
        ([105, 205, 305, 405], 0.9, [0.1, 0.80, 0.0]),   # same car, lower score -> suppressed by NMS
        ([110, 210, 310, 410], 0.9, [0.9, 0.10, 0.0]),   # overlapping but a person -> kept (per-class NMS)
        ([900, 100, 1000, 300], 0.3, [0.0, 0.0, 0.9]),   # dog, 0.27 v5 / 0.9 v8
        ([0, 0, 50, 50], 0.9, [0.2, 0.1, 0.1]),          # weak in every class -> dropped
    ],
    [
        ([10, 20, 200, 300], 0.8, [0.0, 0.0, 0.7]),      # dog
    ],
]


def build(kind: str, n_boxes: int = 40) -> list[np.ndarray]:
    """A YOLO output for YOLO_SPEC holding CASES, padded with empty rows."""
    attrs = 5 + len(LABELS) if kind == "v5" else 4 + len(LABELS)
    out = np.zeros((len(SIZES), n_boxes, attrs), np.float32)
    for i, (cases, (w, h)) in enumerate(zip(CASES, SIZES)):
        g = geometry(w, h, YOLO_SPEC)
        for k, (box, obj, cls) in enumerate(cases):
            row = letterboxed(box, g)
            out[i, k] = row + ([obj] + cls if kind == "v5" else cls)
    if kind == "v8":
        out = out.transpose(0, 2, 1).copy()
    return [out]


@pytest.mark.parametrize("kind", ["v5", "v8"])
def test_yolo_decode(kind: str) -> None:
    adapter = get_adapter("yolo")
    cfg = InferenceSection(model="m", adapter="yolo", labels=LABELS, score_threshold=0.25, nms_threshold=0.45)
    dets = adapter.decode(build(kind), SIZES, YOLO_SPEC, cfg)
    dog = 0.9 if kind == "v8" else 0.27
    car = 0.95 if kind == "v8" else 0.855
    person = 0.9 if kind == "v8" else 0.81
    expect0 = sorted([("car", car, [100, 200, 300, 400]), ("person", person, [110, 210, 310, 410]),
                      ("dog", dog, [900, 100, 1000, 300])], key=lambda t: (-t[1], t[0]))
    got0 = sorted([(d.label, d.score, d.box) for d in dets[0]], key=lambda t: (-t[1], t[0]))
    assert [t[0] for t in got0] == [t[0] for t in expect0]
    for (_, s, b), (_, es, eb) in zip(got0, expect0):
        assert s == pytest.approx(es, abs=1e-3) and b == pytest.approx(eb, abs=0.05)
    assert [(d.label, round(d.score, 3)) for d in dets[1]] == [("dog", 0.7 if kind == "v8" else 0.56)]
    assert dets[1][0].box == pytest.approx([10, 20, 200, 300], abs=0.05)

    # Without labels, class ids become the labels; a higher threshold drops the weak ones.
    plain = InferenceSection(model="m", adapter="yolo", score_threshold=0.85)
    labels = {d.label for ds in adapter.decode(build(kind), SIZES, YOLO_SPEC, plain) for d in ds}
    assert labels == ({"1", "0", "2"} if kind == "v8" else {"1"})


def test_yolo_transposed_v8_needs_labels() -> None:
    """[N, boxes, 4+C] is only recognisable as v8 when the class count is known."""
    out = build("v8")[0].transpose(0, 2, 1).copy()
    cfg = InferenceSection(model="m", adapter="yolo", labels=LABELS, score_threshold=0.25)
    dets = get_adapter("yolo").decode([out], SIZES, YOLO_SPEC, cfg)
    assert sorted(d.label for d in dets[0]) == ["car", "dog", "person"]


def test_raw_passes_outputs(frames) -> None:
    adapter, session, _, spec, cfg = load("raw", "blazeface-front-128.onnx")
    assert spec.max_batch == 1 and spec.layout == "NHWC"
    assert adapter.decode([], [(W, H)], spec, cfg) == [[]]
    tensor = np.zeros((1,) + spec.shape, np.float32)
    letterbox_into(frames[0], tensor[0], spec)
    outputs = session.run(None, {spec.name: tensor})
    raw = adapter.raw(outputs, 0)
    names = [o.name for o in session.get_outputs()]
    assert list(raw) == names
    for name, arr in zip(names, outputs):
        assert raw[name]["shape"] == list(arr.shape[1:]) and raw[name]["dtype"] == "float32"
        assert raw[name]["data"] == pytest.approx(arr[0].ravel().tolist())
    assert get_adapter("blazeface").raw(outputs, 0) == {}


def test_model_load_errors(tmp_path) -> None:
    bad = tmp_path / "not-a-model.onnx"
    bad.write_text("this is not protobuf\n")
    for adapter in ("blazeface", "centerface"):
        with pytest.raises(ModelLoadError) as exc:
            open_session(get_adapter(adapter).prepare(str(bad)), [])
        assert str(bad) in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(ModelLoadError, match="no such file"):
        open_session(str(tmp_path / "missing.onnx"), [])
    with pytest.raises(ValueError, match="unknown adapter"):
        get_adapter("ssd")
    # A fixed-size model asked to run at another size cannot work: say so, naming the model.
    adapter = get_adapter("blazeface")
    session, _ = open_session(str(MODELS / "blazeface-front-128.onnx"), [])
    with pytest.raises(ModelLoadError, match="blazeface-front-128.onnx.*input_size"):
        adapter.model_input(session, InferenceSection(model="m", adapter="blazeface", input_size=[256, 256]))


def test_open_session_is_quiet_and_falls_back(capfd) -> None:
    capfd.readouterr()
    session, provider = open_session(str(MODELS / "centerface.onnx"), ["CUDAExecutionProvider"])
    out, err = capfd.readouterr()
    assert provider == session.get_providers()[0]
    assert provider in ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert "EP Error" not in out + err and "Removing initializer" not in out + err
    line = describe(session, provider)
    assert line == f"inference: centerface.onnx on {provider} (input 10x3x32x32, fixed batch 10)"
    session, provider = open_session(str(MODELS / "blazeface-front-128.onnx"), [])
    assert describe(session, provider) == (
        f"inference: blazeface-front-128.onnx on {provider} (input 1x128x128x3, fixed batch 1)")
