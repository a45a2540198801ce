"""The shipped wasm filters on real frames: C, Rust and the native reference agree pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest

from pipeless.protocol.messages import Detection, ModelInput
from pipeless.workers.filters.base import FilterError, FilterLoadError
from pipeless.workers.filters.chain import FilterChain
from pipeless.workers.filters.registry import build_filter
from pipeless.workers.frame import Frame
from pipeless.workers.wasm import ops
from pipeless.workers.wasm.testing import LANGS, component, config, detections, frames

N = 40  # frames of the clip used (the face drifts, frames 20-29 have no detections)


def _native_blur(img: np.ndarray, dets: list[Detection], kernel: int) -> None:
    ops.blur(img, [ops.box_to_rect(d.box) for d in dets], kernel)


def _native_draw(img: np.ndarray, dets: list[Detection]) -> None:
    ops.draw_boxes(img, [(ops.box_to_rect(d.box), (0, 255, 0), 2, ops.detection_tag(d.label, d.score)) for d in dets])


@pytest.fixture(scope="module")
def clip():
    return frames(N)


def test_blur_and_draw_give_identical_pixels_in_c_rust_and_native(clip):
    chains = {
        lang: FilterChain([
            build_filter(config("blur", component(lang, "blur_faces"), config={"kernel": 21})),
            build_filter(config("draw", component(lang, "draw_detections"))),
        ])
        for lang in LANGS
    }
    changed = 0
    for i, img in enumerate(clip):
        ref = img.copy()
        _native_blur(ref, detections(i), 21)
        _native_draw(ref, detections(i))
        for lang, chain in chains.items():
            frame = Frame(img.copy(), "cam", i, i / 30, detections=detections(i))
            assert chain.run(frame) == []
            assert np.array_equal(frame.image, ref), f"{lang} differs from native on frame {i}"
        changed += not np.array_equal(ref, img)
    assert changed == N - 10  # every frame with detections was really modified


def test_blur_changes_only_the_boxes_and_works_in_place_on_a_view(clip):
    big = np.zeros((2, 144, 176, 3), np.uint8)  # like a slot ring: the frame is a view
    big[1] = clip[0]
    flt = build_filter(config("blur", component("rust", "blur_faces"), config={"kernel": 31}))
    face = Detection("face", 0.9, [50.0, 22.0, 120.0, 110.0])
    flt.process(Frame(big[1], "cam", 0, 0.0, detections=[face]))
    diff = np.any(big[1] != clip[0], axis=2)
    ys, xs = np.nonzero(diff)
    assert diff.sum() > 1000
    assert xs.min() >= 50 and xs.max() < 120 and ys.min() >= 22 and ys.max() < 110
    assert not big[0].any()


@pytest.mark.parametrize("lang", LANGS)
def test_face_tracker_keeps_state_and_emits_enter_and_leave(lang, clip):
    flt = build_filter(config("tracker", component(lang, "face_tracker"), stateful=True, config={"label": "face"}))
    outs = [flt.process(Frame(img.copy(), "cam", i, i / 30, detections=detections(i))) for i, img in enumerate(clip)]
    events = [(o["frame"], e["event"], e["id"]) for o in outs for e in o["events"]]
    # One face: enters at 0, lost during the 10-frame gap (leave after 5 missing), re-enters at 30.
    assert events == [(0, "enter", 1), (25, "leave", 1), (30, "enter", 2)]
    assert [t["id"] for t in outs[10]["tracks"]] == [1]
    assert outs[10]["tracks"][0]["box"] == pytest.approx([50.0, 22.5, 120.7, 110.2], abs=1e-3)  # i=10: dx = 0


@pytest.mark.parametrize("lang", LANGS)
def test_face_tracker_keeps_each_streams_tracks_apart(lang, clip):
    """Two streams through one instance (stateful filters run once, in worker 0): each keeps its own
    tracks and its own frame count. Stream "door" sees the face only in its first 3 frames, stream
    "cam" sees it throughout; "door" must lose its track while "cam" keeps its."""
    flt = build_filter(config("tracker", component(lang, "face_tracker"), stateful=True, config={"label": "face"}))
    events: dict[str, list] = {"cam": [], "door": []}
    tracks: dict[str, list] = {"cam": [], "door": []}
    for i, img in enumerate(clip[:15]):
        for stream in ("cam", "door"):
            dets = detections(i) if stream == "cam" or i < 3 else []
            out = flt.process(Frame(img.copy(), stream, i, i / 30, detections=dets))
            events[stream] += [(out["frame"], e["event"], e["id"]) for e in out["events"]]
            tracks[stream].append([t["id"] for t in out["tracks"]])
    assert events["cam"] == [(0, "enter", 1)]
    assert events["door"] == [(0, "enter", 2), (8, "leave", 2)]  # last seen at 2, gone after 5 missing
    assert all(ids == [1] for ids in tracks["cam"])  # the other stream's face never shows here
    assert tracks["door"][:8] == [[2]] * 8 and tracks["door"][8:] == [[]] * 7


def test_face_tracker_outputs_are_identical_across_languages(clip):
    outs = {}
    for lang in LANGS:
        flt = build_filter(config("tracker", component(lang, "face_tracker"), config={"min_iou": 0.5}))
        outs[lang] = [flt.process(Frame(img.copy(), "cam", i, 0.0, detections=detections(i))) for i, img in enumerate(clip)]
    assert outs["c"] == outs["rust"]


@pytest.mark.parametrize("lang", LANGS)
def test_letterbox_prepares_the_model_input_like_the_shared_helper(lang, clip):
    spec = ModelInput(name="input", width=128, height=128, layout="NCHW", color="RGB", scale=1 / 127.5, offset=-1.0)
    tensor = np.full(spec.shape, 7.0, np.float32)
    frame = Frame(clip[0].copy(), "cam", 0, 0.0, tensor=tensor, model_input=spec)
    out = build_filter(config("lb", component(lang, "letterbox"), stage="pre")).process(frame)
    ref = np.zeros(spec.shape, np.float32)
    g = ops._letterbox(clip[0], ref, spec)
    assert np.array_equal(tensor, ref)
    assert np.array_equal(frame.image, clip[0])  # the frame is only read
    assert out == pytest.approx({"scale_x": g[0], "scale_y": g[1], "pad_x": g[2], "pad_y": g[3]}, abs=1e-3)


@pytest.mark.parametrize("lang", LANGS)
def test_letterbox_without_a_model_input_fails_that_frame_only(lang, clip):
    flt = build_filter(config("lb", component(lang, "letterbox"), stage="pre"))
    with pytest.raises(FilterError) as err:
        flt.process(Frame(clip[0].copy(), "cam", 0, 0.0))
    assert err.value.kind == "error" and "no model input" in str(err.value)


def test_init_errors_are_load_errors_naming_the_filter():
    with pytest.raises(FilterLoadError, match="'blur'.*kernel must be odd"):
        build_filter(config("blur", component("c", "blur_faces"), config={"kernel": 4}))
    with pytest.raises(FilterLoadError, match="'blur'.*kernel must be odd"):
        build_filter(config("blur", component("rust", "blur_faces"), config={"kernel": 4}))


def test_not_a_component_is_a_load_error(tmp_path):
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\0asm garbage")
    with pytest.raises(FilterLoadError, match="'x'.*not a valid component"):
        build_filter(config("x", bad))
    with pytest.raises(FilterLoadError, match="not a valid component: .*module"):  # a core module given as kind wasm
        build_filter(config("x", component("c", "module/invert_module")))


def test_filter_error_from_the_guest_and_fatal_rebuilds(clip):
    flt = build_filter(config("f", component("c", "hostile/fails")))
    assert flt.process(Frame(clip[0].copy(), "cam", 0, 0.0)) == {"calls": 1}
    with pytest.raises(FilterError, match="failed: this frame is not for me") as e:
        flt.process(Frame(clip[0].copy(), "cam", 1, 0.0))
    assert e.value.kind == "error"
    with pytest.raises(FilterError, match="fatal: state corrupted"):
        flt.process(Frame(clip[0].copy(), "cam", 2, 0.0))
    # fatal: a fresh instance (init again), so the call count restarts
    assert flt.process(Frame(clip[0].copy(), "cam", 3, 0.0)) == {"calls": 1}
    assert flt.rebuilds == 1


def test_ops_validate_their_arguments(clip):
    img = clip[0].copy()
    with pytest.raises(ops.HostCallError):
        ops.blur(img, [(0, 0, 10, 10)], 4)
    with pytest.raises(ops.HostCallError):
        ops.fill(img, [(0, 0, -1, 10)], (1, 2, 3))
    with pytest.raises(ops.HostCallError, match="at most 65536"):
        ops.read_region(img, (0, 0, 176, 144))
    with pytest.raises(ops.HostCallError):
        ops.write_region(img, (0, 0, 2, 2), b"\0" * 11)
    ops.fill(img, [(170, 140, 100, 100), (-50, -50, 10, 10)], (255, 0, 0))  # clipped / skipped
    assert (img[140:, 170:] == (0, 0, 255)).all()
    px = ops.read_region(img, (0, 0, 4, 2))
    ops.write_region(img, (10, 10, 4, 2), px.tobytes())
    assert np.array_equal(img[10:12, 10:14], img[0:2, 0:4])
    assert ops.box_to_rect([float("nan"), -3.7, 1e30, 10.9]) == (0, -3, 16777216, 13)
    assert ops.detection_tag("face", 0.875) == "face 88%" and ops.detection_tag("x", 2.0) == "x 100%"


def test_prepare_input_of_a_crop_maps_frame_pixels_into_the_tensor(clip):
    spec = ModelInput(name="i", width=64, height=64, layout="NHWC", color="BGR", scale=1.0, offset=0.0)
    tensor = np.zeros(spec.shape, np.float32)
    frame = Frame(clip[0].copy(), "cam", 0, 0.0, tensor=tensor, model_input=spec)
    sx, sy, px, py = ops.prepare_input(frame, (40, 20, 80, 80))
    assert (sx, sy, px, py) == pytest.approx((0.8, 0.8, -32.0, -16.0))
    for x, y in [(50, 30), (80, 60), (110, 90)]:
        got = tensor[int(y * sy + py), int(x * sx + px)]
        assert np.abs(got - clip[0][y, x]).max() <= 12  # bilinear resize of the same neighbourhood
