"""letterbox_into against a slow, obvious reference; geometry/to_source round trips."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeless.protocol.messages import ModelInput
from pipeless.workers.inference.letterbox import Letterbox, geometry, letterbox_into, to_source

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "carphone.mp4"


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    cap = cv2.VideoCapture(str(SAMPLE))
    for _ in range(30):
        ok, img = cap.read()
        assert ok
    cap.release()
    return img


def reference(image: np.ndarray, spec: ModelInput) -> np.ndarray:
    """The same transform written the slow, obvious way: uint8 canvas, paste, then float math."""
    h, w = image.shape[:2]
    if spec.letterbox:
        s = min(spec.width / w, spec.height / h)
        nw, nh = int(round(w * s)), int(round(h * s))
    else:
        nw, nh = spec.width, spec.height
    left, top = (spec.width - nw) // 2, (spec.height - nh) // 2
    canvas = np.full((spec.height, spec.width, 3), spec.pad_value, dtype=np.uint8)
    canvas[top:top + nh, left:left + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    if spec.color == "RGB":
        canvas = canvas[:, :, ::-1]
    out = canvas.astype(np.float64) * spec.scale + spec.offset
    if spec.layout == "NCHW":
        out = out.transpose(2, 0, 1)
    return out.astype(np.float32)


SPECS = [
    ModelInput("x", w, h, layout, color, scale, offset, pad, lb)
    for (w, h), layout, color, (scale, offset, pad), lb in itertools.product(
        [(128, 128), (192, 160), (96, 200)],
        ["NHWC", "NCHW"],
        ["RGB", "BGR"],
        [(1 / 127.5, -1.0, 0), (1 / 255, 0.0, 114), (1.0, 0.0, 0)],
        [True, False],
    )
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.width}x{s.height}-{s.layout}-{s.color}-{s.pad_value}-{s.letterbox}")
def test_matches_reference_and_writes_in_place(frame: np.ndarray, spec: ModelInput) -> None:
    # The tensor is a view into a larger buffer, as a shared-memory slot would be:
    # everything must land in the view, nothing around it may change.
    n = int(np.prod(spec.shape))
    buf = np.full(n + 64, 7.0, dtype=np.float32)
    tensor = buf[32:32 + n].reshape(spec.shape)
    image = frame.copy()
    geom = letterbox_into(image, tensor, spec)
    np.testing.assert_array_equal(image, frame)  # source untouched
    assert np.all(buf[:32] == 7.0) and np.all(buf[32 + n:] == 7.0)
    np.testing.assert_allclose(tensor, reference(frame, spec), rtol=0, atol=1e-5)
    assert geom == geometry(frame.shape[1], frame.shape[0], spec)


def test_same_size_and_strided_source(frame: np.ndarray) -> None:
    """No resize path (input == frame size) and a non-contiguous source view."""
    spec = ModelInput("x", 176, 144, "NHWC", "RGB", 1 / 255, 0.0)
    tensor = np.empty(spec.shape, np.float32)
    image = frame.copy()
    letterbox_into(image, tensor, spec)
    np.testing.assert_allclose(tensor, reference(frame, spec), atol=1e-6)
    np.testing.assert_array_equal(image, frame)  # no in-place colour swap on the shared frame

    big = np.zeros((200, 300, 3), np.uint8)
    big[10:154, 20:196] = frame
    view = big[10:154, 20:196]
    for spec in (ModelInput("x", 128, 128, "NCHW", "RGB", 1 / 255, 0.0),
                 ModelInput("x", 176, 144, "NCHW", "RGB", 1 / 255, 0.0),
                 ModelInput("x", 176, 144, "NHWC", "RGB", 1 / 255, 0.0)):
        tensor = np.empty(spec.shape, np.float32)
        letterbox_into(view, tensor, spec)
        np.testing.assert_allclose(tensor, reference(frame, spec), atol=1e-6)
    np.testing.assert_array_equal(view, frame)


@pytest.mark.parametrize("letterbox", [True, False])
@pytest.mark.parametrize("src", [(176, 144), (1920, 1080), (480, 640), (33, 77)])
def test_round_trip(src: tuple[int, int], letterbox: bool) -> None:
    spec = ModelInput("x", 192, 160, "NCHW", "BGR", 1.0, 0.0, letterbox=letterbox)
    w, h = src
    g = geometry(w, h, spec)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, [w, h, w, h], size=(50, 4)).astype(np.float32)
    boxes = np.concatenate([np.minimum(xy[:, :2], xy[:, 2:]), np.maximum(xy[:, :2], xy[:, 2:])], axis=1)
    to_in = boxes.copy()
    to_in[:, 0::2] = boxes[:, 0::2] * g.scale_x + g.pad_x
    to_in[:, 1::2] = boxes[:, 1::2] * g.scale_y + g.pad_y
    # In-frame boxes land inside the resized image, never in the padding.
    assert to_in[:, 0::2].min() >= g.pad_x - 1e-3 and to_in[:, 0::2].max() <= spec.width - g.pad_x + 1e-3
    np.testing.assert_allclose(to_source(to_in, g, w, h), boxes, atol=1e-3)
    if letterbox:
        assert abs(g.scale_x - g.scale_y) / g.scale_x < 0.05  # aspect kept (to whole pixels)
        assert g.pad_x == 0 or g.pad_y == 0
    else:
        assert g == Letterbox(192 / w, 160 / h, 0.0, 0.0)


def test_to_source_clips_to_frame() -> None:
    spec = ModelInput("x", 128, 128, "NHWC", "RGB", 1.0, 0.0)
    g = geometry(176, 144, spec)
    out = to_source(np.array([[-20, -20, 300, 300], [0, 0, 128, 5]], np.float32), g, 176, 144)
    assert out[0].tolist() == [0, 0, 176, 144]
    assert out[1, 3] == 0  # a box wholly in the top padding collapses onto the edge
    assert to_source(np.zeros((0, 4), np.float32), g, 176, 144).shape == (0, 4)


def test_rejects_wrong_tensor(frame: np.ndarray) -> None:
    spec = ModelInput("x", 128, 128, "NHWC", "RGB", 1.0, 0.0)
    with pytest.raises(ValueError):
        letterbox_into(frame, np.zeros((3, 128, 128), np.float32), spec)
    with pytest.raises(ValueError):
        letterbox_into(frame, np.zeros((128, 128, 3), np.float64), spec)
