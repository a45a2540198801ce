"""The `wasm-module` kind: a core module with the scalar import ABI of docs/wasm-abi.md."""

from __future__ import annotations

import numpy as np
import pytest
from wasmtime import wat2wasm

from pipeless.workers.filters.base import FilterError
from pipeless.workers.filters.registry import build_filter
from pipeless.workers.frame import Frame
from pipeless.workers.wasm import ops
from pipeless.workers.wasm.testing import component, config, detections, frames


def _module(tmp_path, name, wat):
    p = tmp_path / f"{name}.wasm"
    p.write_bytes(wat2wasm(wat))
    return p


def test_blur_module_gives_the_same_pixels_as_the_components():
    img = frames(1)[0]
    flt = build_filter(config("m", component("c", "module/blur_faces_module"), kind="wasm-module", config={"kernel": 21}))
    frame = Frame(img.copy(), "cam", 0, 0.0, detections=detections(0))
    assert flt.process(frame) is None
    ref = img.copy()
    ops.blur(ref, [ops.box_to_rect(d.box) for d in detections(0)], 21)
    assert np.array_equal(frame.image, ref)


def test_opt_in_whole_frame_copy_round_trips_pixels():
    img = frames(1)[0]
    flt = build_filter(config("inv", component("c", "module/invert_module"), kind="wasm-module"))
    frame = Frame(img.copy(), "cam", 0, 0.0)
    flt.process(frame)
    assert np.array_equal(frame.image, 255 - img)


def test_module_emit_detections_and_errors(tmp_path):
    wat = """(module
      (import "pipeless" "detections_count" (func $count (result i32)))
      (import "pipeless" "detection_label" (func $label (param i32 i32 i32) (result i32)))
      (import "pipeless" "emit" (func $emit (param i32 i32)))
      (import "pipeless" "set_error" (func $err (param i32 i32)))
      (import "pipeless" "blur" (func $blur (param i32 i32 i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "{\\"n\\": 0}")
      (data (i32.const 64) "no detections")
      (func (export "pl_process") (result i32)
        (if (i32.eqz (call $count)) (then (call $err (i32.const 64) (i32.const 13)) (return (i32.const 1))))
        (i32.store8 (i32.const 6) (i32.add (i32.const 48) (call $count)))
        (call $emit (i32.const 0) (i32.const 8))
        ;; a rect list pointer past the end of memory: host-call error
        (if (i32.gt_u (call $count) (i32.const 2)) (then (call $blur (i32.const 65530) (i32.const 1) (i32.const 3))))
        (i32.const 0)))"""
    flt = build_filter(config("w", _module(tmp_path, "w", wat), kind="wasm-module"))
    img = frames(1)[0]
    assert flt.process(Frame(img.copy(), "cam", 0, 0.0, detections=detections(0))) == {"n": 2}
    with pytest.raises(FilterError, match="failed: no detections") as e:
        flt.process(Frame(img.copy(), "cam", 1, 0.0))
    assert e.value.kind == "error"
    with pytest.raises(FilterError) as e:
        flt.process(Frame(img.copy(), "cam", 2, 0.0, detections=detections(0) * 2))
    assert e.value.kind == "host-call" and "outside linear memory" in str(e.value)
    assert flt.process(Frame(img.copy(), "cam", 3, 0.0, detections=detections(0))) == {"n": 2}


def test_module_runaway_and_memory_blow(tmp_path):
    loop = _module(tmp_path, "loop", '(module (memory (export "memory") 1) (func (export "pl_process") (result i32) (loop $l (br $l)) (i32.const 0)))')
    grow = _module(tmp_path, "grow", """(module (memory (export "memory") 1)
      (func (export "pl_process") (result i32)
        (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
        unreachable))""")
    img = frames(1)[0]
    f = build_filter(config("loop", loop, kind="wasm-module", deadline_ms=20))
    with pytest.raises(FilterError) as e:
        f.process(Frame(img.copy(), "cam", 0, 0.0))
    assert e.value.kind == "deadline"
    g = build_filter(config("grow", grow, kind="wasm-module", memory_mb=4))
    with pytest.raises(FilterError) as e:
        g.process(Frame(img.copy(), "cam", 0, 0.0))
    assert e.value.kind == "memory"
    assert g.rebuilds == 0


def test_no_wasi_unless_allow_grants_it(tmp_path):
    from pipeless.workers.filters.base import FilterLoadError

    wat = """(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "hi\\n")
      (func (export "pl_process") (result i32)
        (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 3))
        (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (i32.const 0)))"""
    path = _module(tmp_path, "wasi", wat)
    with pytest.raises(FilterLoadError, match="wasi_snapshot_preview1"):
        build_filter(config("w", path, kind="wasm-module"))
    with pytest.raises(FilterLoadError, match="unknown WASI grant"):
        build_filter(config("w", path, kind="wasm-module", allow=["network"]))
    flt = build_filter(config("w", path, kind="wasm-module", allow=["stdout"]))
    assert flt.process(Frame(frames(1)[0], "cam", 0, 0.0)) is None
