"""Every frame operation called from a real guest: the lean value path carries each WIT type correctly."""

from __future__ import annotations

import logging

import numpy as np

from pipeless.protocol.messages import Detection
from pipeless.workers.filters.registry import build_filter
from pipeless.workers.frame import Frame
from pipeless.workers.wasm import ops
from pipeless.workers.wasm.testing import component, config, frames


def test_a_guest_calling_every_operation_matches_the_same_ops_run_natively(caplog):
    img = frames(1)[0]
    dets = [Detection("face", 0.9, [1.0, 2.0, 3.0, 4.0]), Detection("hand", 0.5, [5.0, 6.0, 7.0, 8.0])]
    frame = Frame(img.copy(), "cam-7", 12, 0.4, detections=list(dets))
    flt = build_filter(config("ex", component("c", "hostile/exercise")))
    with caplog.at_level(logging.INFO, logger="pipeless.wasm"):
        out = flt.process(frame)
    assert out == {"w": 176, "h": 144, "c": 3, "index": 12, "pts": 0.4, "stream": "cam-7", "stream2": "cam-7",
                   "model": False, "n": 2}
    assert "[ex] exercised" in caplog.text
    assert [(d.label, d.score, d.box) for d in frame.detections] == [("kept", 0.25, [1.0, 2.0, 3.0, 4.0])]

    ref = img.copy()
    ops.write_region(ref, (0, 0, 4, 2), (255 - ops.read_region(ref, (0, 0, 4, 2))).tobytes())
    ops.fill(ref, [(10, 10, 5, 5), (200, 200, 5, 5)], (255, 0, 0))
    ops.pixelate(ref, [(20, 20, 16, 16)], 4)
    ops.convert_color(ref, (40, 40, 8, 8), 1)
    ops.copy_region(ref, (0, 0, 8, 8), (60, 60, 16, 16))
    ops.draw_lines(ref, [((0, 100), (50, 100), (0, 0, 255), 1)])
    ops.draw_circles(ref, [((120, 30), 5, (0, 255, 0), -1)])
    ops.draw_texts(ref, [((100, 130), "hi", (255, 255, 255), 0.5, 1)])
    assert np.array_equal(frame.image, ref)
    assert (frame.image[10:15, 10:15] == (0, 0, 255)).all()  # RGB red is BGR (0, 0, 255)
