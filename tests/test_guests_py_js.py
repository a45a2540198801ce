"""The Python and JS twins of the shipped filters change exactly the pixels the C one does.

On real frames of samples/carphone.mp4 (176x144, one face), with the faces
the shipped BlazeFace model finds in them, and with a box around the face plus boxes that test the edge rules (partly outside the frame,
beyond it, empty, inverted, NaN, the whole frame, beyond the host's limit), blur_faces and draw_detections built
from filters/python_guest and filters/js leave every pixel, and the
detections, exactly as filters/c's do; and so does the host's native
reference (ops.blur on ops.box_to_rect), so equal also means right.

The Python and JS components are built on demand (cached, ~10 s each the
first time) and compiled by wasmtime on first load (~10 s each, then cached);
each language skips, saying what to install, when its toolchain is missing.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeless.orchestrator import filter_cli
from pipeless.orchestrator.config import FilterConfig
from pipeless.protocol.messages import Detection
from pipeless.workers.filters.base import FilterError, FilterLoadError
from pipeless.workers.frame import Frame

wasm = pytest.importorskip("pipeless.workers.wasm.component", reason="the wasm host is not in this build")
ops = pytest.importorskip("pipeless.workers.wasm.ops")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "carphone.mp4"
GUEST_DIRS = {"python": ROOT / "filters" / "python_guest", "js": ROOT / "filters" / "js"}
FILTERS = ("blur_faces", "draw_detections")
FRAME_NUMBERS = (0, 24, 48, 72, 96)

FACE = [60.4, 28.7, 116.2, 100.9]  # around the face in the first frames (it moves a little)
EDGE_CASES = [
    [-10.7, -5.2, 30.9, 20.1],  # partly outside, top-left
    [150.5, 120.2, 190.0, 160.0],  # partly beyond the right and bottom edges
    [200.0, 10.0, 240.0, 50.0],  # wholly outside: skipped
    [50.0, 50.0, 50.9, 80.0],  # zero width after truncation
    [10.2, 10.2, 12.9, 12.9],  # 2 x 2
    [100.0, 100.0, 90.0, 110.0],  # inverted: empty
    [math.nan, 5.0, 20.0, 25.0],  # NaN edge -> 0
]
WHOLE = [-500.5, -500.5, 900.7, 900.7]  # clipped to the whole frame
BEYOND_LIMIT = [-1e9, -1e9, 1e9, 1e9]  # clamped to +-2^24, a rect the host refuses (host-call), for every language


def frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(SAMPLE))
    out, i = [], 0
    try:
        while len(out) < len(FRAME_NUMBERS):
            ok, img = cap.read()
            if not ok:
                break
            if i in FRAME_NUMBERS:
                out.append(img)
            i += 1
    finally:
        cap.release()
    assert len(out) == len(FRAME_NUMBERS) and out[0].shape == (144, 176, 3), "cannot read samples/carphone.mp4"
    return out


def box_sets(k: int) -> list[list[Detection]]:
    """Per frame: the face alone, the face with every edge case, the whole frame, and a box the host refuses."""
    face = [v + k * 0.37 for v in FACE]  # a different sub-pixel offset on each frame
    labels = [("face", 0.934), ("x", 1.0), ("", 0.5), ("façade", 0.005), ("a", 0.9951), ("b", 0.0949), ("c", 0.45), ("d", 2.0)]
    mixed = [face] + EDGE_CASES
    return [
        [Detection("face", 0.934, face)],
        [Detection(labels[i % len(labels)][0], labels[i % len(labels)][1], b) for i, b in enumerate(mixed)],
        [Detection("all", 0.5, WHOLE)],
        [Detection("huge", 0.5, BEYOND_LIMIT)],
    ]


@pytest.fixture(scope="module")
def real_frames():
    return frames()


def _build(lang: str, name: str) -> Path:
    targets = [t for t in filter_cli.find_targets(GUEST_DIRS[lang] / f"{name}.{'py' if lang == 'python' else 'js'}")]
    out, _ = filter_cli.build_target(targets[0])
    return out


@pytest.fixture(scope="module", params=["python", "js"])
def lang(request):
    try:
        if request.param == "python":
            filter_cli.componentize_py()
        else:
            filter_cli.componentize_js(GUEST_DIRS["js"])
    except filter_cli.CliError as exc:
        pytest.skip(f"{request.param} guests cannot be built here: {exc}")
    return request.param


@pytest.fixture(scope="module")
def components(lang):
    """{filter name: (C .wasm, guest .wasm)} for this language."""
    try:
        built = {name: _build(lang, name) for name in FILTERS}
    except filter_cli.CliError as exc:
        pytest.fail(f"building the {lang} guests failed: {exc}")
    out = {}
    for name in FILTERS:
        c = ROOT / "filters" / "c" / f"{name}.wasm"
        if not c.is_file():
            pytest.skip(f"{c} is not built (python filters/build.py)")
        out[name] = (c, built[name])
    return out


def load(path: Path, config: dict | None = None) -> "wasm.WasmComponentFilter":
    # A generous deadline: the first call of a fresh Python/JS instance on a busy 2-core CI box.
    return wasm.WasmComponentFilter(FilterConfig(name=path.stem, kind="wasm", path=str(path), config=config or {},
                                                 deadline_ms=5000, memory_mb=256))


def run(flt, img: np.ndarray, dets: list[Detection], index: int) -> tuple[np.ndarray, list, object]:
    """(pixels, detections, output), the output being ("failed", kind, message) when the frame failed."""
    frame = Frame(image=img.copy(), stream="carphone", index=index, pts=index / 30.0,
                  detections=[Detection(d.label, d.score, list(d.box)) for d in dets])
    try:
        out = flt.process(frame)
    except FilterError as exc:
        out = ("failed", exc.kind, str(exc))
    return frame.image, [(d.label, d.score, d.box) for d in frame.detections], out


def same_boxes(a: list, b: list) -> bool:
    """Detections equal, NaN equal to NaN."""
    if len(a) != len(b):
        return False
    for (la, sa, ba), (lb, sb, bb) in zip(a, b):
        if la != lb or sa != sb or len(ba) != len(bb):
            return False
        if any(not (x == y or (math.isnan(x) and math.isnan(y))) for x, y in zip(ba, bb)):
            return False
    return True


@pytest.mark.parametrize("config", [{}, {"kernel": 15}])
def test_blur_faces_same_pixels_as_c(real_frames, components, lang, config):
    c_path, guest_path = components["blur_faces"]
    c, guest = load(c_path, config), load(guest_path, config)
    kernel = config.get("kernel", 31)
    try:
        for k, img in enumerate(real_frames):
            for dets in box_sets(k):
                c_img, c_dets, c_out = run(c, img, dets, k)
                g_img, g_dets, g_out = run(guest, img, dets, k)
                assert np.array_equal(c_img, g_img), (
                    f"{lang} blur_faces differs from C on frame {FRAME_NUMBERS[k]} with {len(dets)} boxes: "
                    f"{int(np.count_nonzero(c_img != g_img))} values")
                assert same_boxes(c_dets, g_dets) and c_out == g_out, (c_out, g_out)
                ref = img.copy()
                try:
                    ops.blur(ref, [ops.box_to_rect(d.box) for d in dets], kernel)
                except ops.HostCallError as exc:  # BEYOND_LIMIT: the host refuses it, for every language alike
                    assert c_out[:2] == ("failed", "host-call") and str(exc) in c_out[2]
                    continue
                assert c_out is None
                assert np.array_equal(c_img, ref), "the C filter itself disagrees with the native reference"
                assert np.count_nonzero(c_img != img) > 0  # the face really was blurred
    finally:
        c.close()
        guest.close()


@pytest.mark.parametrize("config", [{}, {"r": 255, "g": 0, "b": 0, "thickness": 1}])
def test_draw_detections_same_pixels_as_c(real_frames, components, lang, config):
    c_path, guest_path = components["draw_detections"]
    c, guest = load(c_path, config), load(guest_path, config)
    try:
        for k, img in enumerate(real_frames):
            for dets in box_sets(k):
                c_img, c_dets, c_out = run(c, img, dets, k)
                g_img, g_dets, g_out = run(guest, img, dets, k)
                assert np.array_equal(c_img, g_img), (
                    f"{lang} draw_detections differs from C on frame {FRAME_NUMBERS[k]} with {len(dets)} boxes")
                assert same_boxes(c_dets, g_dets) and c_out == g_out, (c_out, g_out)
                if dets[0].label == "face":  # the face's box is drawn (the whole-frame one lies outside the picture)
                    assert c_out is None and np.count_nonzero(c_img != img) > 0
    finally:
        c.close()
        guest.close()


@pytest.mark.parametrize("name,config,message", [
    ("blur_faces", {"kernel": 4}, "kernel must be odd, 1..255"),
    ("blur_faces", {"kernel": 300}, "kernel must be odd, 1..255"),
    ("draw_detections", {"thickness": 0}, "thickness must be 1..64"),
])
def test_bad_config_fails_init_like_c(components, lang, name, config, message):
    c_path, guest_path = components[name]
    errors = []
    for path in (c_path, guest_path):
        with pytest.raises(FilterLoadError) as info:
            load(path, config)
        errors.append(str(info.value))
    assert message in errors[0] and errors[0] == errors[1]


def test_guests_import_no_wasi(components, lang):
    """Built by default without WASI: they load with no `allow` grant, like the C and Rust ones."""
    tools = filter_cli.wasm_tools()
    for _, guest_path in components.values():
        world = filter_cli.subprocess.run([tools, "component", "wit", str(guest_path)], capture_output=True,
                                          text=True).stdout
        imports = [ln.strip() for ln in world.splitlines() if ln.strip().startswith("import ")]
        assert imports and all("pipeless:filter/" in ln for ln in imports), imports


@pytest.fixture(scope="module")
def model_detections(real_frames) -> list[list[Detection]]:
    """What the pipeline's inference finds in these frames: BlazeFace (models/), letterboxed as the workers do."""
    from pipeless.orchestrator.config import InferenceSection
    from pipeless.workers.inference.adapters import get_adapter
    from pipeless.workers.inference.letterbox import letterbox_into
    from pipeless.workers.inference.providers import open_session

    cfg = InferenceSection(model=str(ROOT / "models" / "blazeface-front-128.onnx"), adapter="blazeface",
                           providers=["CPUExecutionProvider"])
    adapter = get_adapter("blazeface")
    session, _ = open_session(adapter.prepare(cfg.model), cfg.providers)
    spec = adapter.model_input(session, cfg)
    out = []
    for img in real_frames:
        tensor = np.zeros((1,) + spec.shape, np.float32)
        letterbox_into(img, tensor[0], spec)
        outputs = session.run(None, {spec.name: tensor})
        out += adapter.decode(outputs, [(img.shape[1], img.shape[0])], spec, cfg)
    assert sum(1 for d in out if d) >= len(out) - 1, f"BlazeFace found the face in too few frames: {out}"
    return out


@pytest.mark.parametrize("name", FILTERS)
def test_same_pixels_as_c_on_the_models_detections(real_frames, model_detections, components, lang, name):
    c_path, guest_path = components[name]
    c, guest = load(c_path), load(guest_path)
    try:
        for k, (img, dets) in enumerate(zip(real_frames, model_detections)):
            c_img, c_dets, c_out = run(c, img, dets, k)
            g_img, g_dets, g_out = run(guest, img, dets, k)
            assert c_out is None and g_out is None
            assert np.array_equal(c_img, g_img), f"{lang} {name} differs from C on frame {FRAME_NUMBERS[k]}: {dets}"
            assert same_boxes(c_dets, g_dets)
            assert (np.count_nonzero(c_img != img) > 0) == bool(dets)
    finally:
        c.close()
        guest.close()
