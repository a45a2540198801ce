"""The inference process's batching on the real centerface model and clip.

On a GPU provider partial batches are padded to the configured size (one
input shape, tuned once); the padded rows must not leak into the results.
The CPU here stands in for the GPU: padding is a property of the runner,
forced on by naming a GPU provider, and the model computes the same either way.
"""

from __future__ import annotations

import numpy as np

from pipeless.protocol import messages as m
from pipeless.workers.inference.process import Batch, BatchRunner
from pipeless.workers.inference.letterbox import letterbox_into
from tests.test_adapters import frames, load  # noqa: F401  (the module-scoped clip fixture)


def _tensors(spec, images) -> list[np.ndarray]:
    out = []
    for img in images:
        t = np.zeros(spec.shape, np.float32)
        letterbox_into(img, t, spec)
        out.append(t)
    return out


def test_padded_tail_gives_the_unpadded_detections(frames) -> None:  # noqa: F811
    adapter, session, provider, spec, cfg = load("centerface", "centerface.onnx", input_size=[192, 160], batch_size=4)
    cpu = BatchRunner(session, adapter, spec, cfg, "CPUExecutionProvider")
    gpu_like = BatchRunner(session, adapter, spec, cfg, "CUDAExecutionProvider")
    assert (cpu.pad_to, gpu_like.pad_to) == (0, 4)
    images = frames[10:13]  # a tail of 3 frames in batches of 4
    sizes = [(img.shape[1], img.shape[0]) for img in images]
    tensors = _tensors(spec, images)
    seen_shapes = []
    real_run = session.run

    def spy(names, feeds):
        seen_shapes.append(next(iter(feeds.values())).shape)
        return real_run(names, feeds)

    session.run = spy
    try:
        plain = cpu.finish(cpu.infer(Batch([_task(i) for i in range(3)], tensors, sizes)))
        padded = gpu_like.finish(gpu_like.infer(Batch([_task(i) for i in range(3)], tensors, sizes)))
    finally:
        del session.run
    assert [s[0] for s in seen_shapes] == [3, 4]  # the GPU-like runner ran a full batch of 4
    assert len(padded) == len(plain) == 3
    for a, b in zip(plain, padded):
        assert a.detections and len(a.detections) == len(b.detections)
        np.testing.assert_allclose([d.box for d in a.detections], [d.box for d in b.detections], atol=1e-3)


def test_failed_run_fails_only_its_frames(frames) -> None:  # noqa: F811
    adapter, session, provider, spec, cfg = load("centerface", "centerface.onnx", input_size=[192, 160])
    runner = BatchRunner(session, adapter, spec, cfg, provider)
    wrong = [np.zeros((3, 7, 7), np.float32)]  # not the model's input shape
    replies = runner.finish(runner.infer(Batch([_task(0)], wrong, [(176, 144)])))
    assert len(replies) == 1 and replies[0].error and replies[0].detections == []
    good = runner.finish(runner.infer(Batch([_task(1)], _tensors(spec, frames[:1]), [(176, 144)])))
    assert good[0].error == "" and len(good[0].detections) == 1


def _task(i: int) -> m.InferTask:
    return m.InferTask(m.SlotHandle(i, 1), "s", i)
