"""The inference process: owns the one onnxruntime session and batches frames from every stream.

Workers have already letterboxed each frame into its slot's tensor area, so
a batch is only a stack of ready tensors (one copy, none for a model that
runs one frame at a time). A batch is flushed when it is full or when its
first frame has waited `batch_timeout_ms`, so latency stays bounded when
traffic is thin and throughput grows when it is heavy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import zmq

from pipeless.protocol import messages as m
from pipeless.protocol.child import become_child
from pipeless.protocol.launch import unpack
from pipeless.shm.ring import FrameRing, StaleHandle
from pipeless.workers.inference.adapters import get_adapter
from pipeless.workers.inference.providers import CPU, ModelLoadError, describe, open_session

log = logging.getLogger("pipeless.inference")


@dataclass
class Batch:
    """One batch on its way through the runner: the frames still valid, their input, their sizes."""

    tasks: list[m.InferTask]
    inputs: list[np.ndarray]
    sizes: list[tuple[int, int]]
    outputs: list[np.ndarray] | None = None
    error: str = ""


class BatchRunner:
    """Runs batches of slots through the session and turns outputs into detections per frame.

    A batch goes through three steps so that serve() can overlap them:
    prepare() (read the slots' tensors), infer() (session.run, which releases
    the GIL and may run on another thread) and finish() (decode detections,
    build the replies). On a GPU the model's run is short enough that
    decoding the previous batch while this one runs is what keeps the device
    busy.
    """

    def __init__(self, session, adapter, spec: m.ModelInput, cfg, provider: str = CPU) -> None:
        self.session = session
        self.adapter = adapter
        self.spec = spec
        self.cfg = cfg
        self.output_names = [o.name for o in session.get_outputs()]
        self.batches = 0
        self.last_error = ""
        # GPU providers tune (cuDNN's algorithm search) or build (TensorRT's engine) once per input shape,
        # which takes seconds: a partial batch of a new size would stall every frame behind it. So on a
        # GPU a model with a dynamic batch always runs full batches, the tail padded, and the padded rows'
        # outputs dropped. The CPU has nothing to tune per shape and would only waste work on padding.
        self.pad_to = cfg.batch_size if provider != CPU and spec.max_batch != 1 and cfg.batch_size > 1 else 0

    def check(self) -> None:
        """Run zero frames through the model and the adapter, so a model/adapter mismatch is a one-line
        error at start instead of a failure on every frame. It also warms the provider up at the shape
        batches will have, so the first frames do not wait for it."""
        tensor = np.zeros(self.spec.shape, np.float32)
        try:
            outputs = self._infer([tensor])
            self.adapter.decode(outputs, [(self.spec.width, self.spec.height)], self.spec, self.cfg)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{self.cfg.model}: adapter {self.cfg.adapter!r} does not fit this model: "
                                 f"{first}") from None

    def prepare(self, ring: FrameRing, tasks: list[m.InferTask]) -> tuple[Batch, list[m.InferDone]]:
        """The batch of tasks whose slots are still theirs, and error replies for the others."""
        batch = Batch([], [], [])
        stale: list[m.InferDone] = []
        for task in tasks:
            try:
                batch.inputs.append(ring.tensor_view(task.handle, self.spec.shape))
            except StaleHandle as exc:
                stale.append(m.InferDone(task.handle, [], 0, error=str(exc)))
                continue
            hdr = ring.header(task.handle.slot)
            batch.sizes.append((int(hdr["width"][0]), int(hdr["height"][0])))
            batch.tasks.append(task)
        return batch, stale

    def infer(self, batch: Batch) -> Batch:
        """session.run on the batch; a failure is kept in the batch and reported by finish()."""
        try:
            batch.outputs = self._infer(batch.inputs)
        except Exception as exc:
            batch.error = _one_line(exc)
        return batch

    def finish(self, batch: Batch) -> list[m.InferDone]:
        """Detections per frame; one bad batch fails its own frames, not the process."""
        self.batches += 1
        n = len(batch.tasks)
        per_frame = None
        if not batch.error:
            try:
                per_frame = self.adapter.decode(batch.outputs, batch.sizes, self.spec, self.cfg)
            except Exception as exc:
                batch.error = _one_line(exc)
        if per_frame is None:
            if batch.error != self.last_error:
                log.warning("inference: batch failed: %s", batch.error)
                self.last_error = batch.error
            return [m.InferDone(t.handle, [], n, self.batches, error=batch.error) for t in batch.tasks]
        return [m.InferDone(t.handle, per_frame[i], n, self.batches, self.adapter.raw(batch.outputs, i))
                for i, t in enumerate(batch.tasks)]

    def _infer(self, tensors: list[np.ndarray]) -> list[np.ndarray]:
        name = self.spec.name
        if self.spec.max_batch == 1:
            # Fixed batch of one inside the graph: run frame by frame, straight from the slot.
            runs = [self.session.run(None, {name: t[None]}) for t in tensors]
            return [np.concatenate([r[k] for r in runs], axis=0) for k in range(len(self.output_names))]
        n = len(tensors)
        size = max(n, self.pad_to)
        if size == 1:
            return self.session.run(None, {name: tensors[0][None]})
        batch = (np.zeros if size > n else np.empty)((size, *self.spec.shape), np.float32)  # padding rows: zeros
        for i, t in enumerate(tensors):
            batch[i] = t
        outputs = self.session.run(None, {name: batch})
        if size == n:
            return outputs
        return [o[:n] if o.ndim and o.shape[0] == size else o for o in outputs]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def main(blob: bytes) -> None:
    """Entry point of the inference process."""
    args = unpack(blob)
    become_child(args.parent_pid)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = args.config.inference
    assert cfg is not None
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.setsockopt(zmq.IDENTITY, args.identity)
    sock.connect(args.endpoint)
    ring: FrameRing | None = None
    try:
        adapter = get_adapter(cfg.adapter)
        try:
            session, provider = open_session(adapter.prepare(cfg.model), cfg.providers)
            spec = adapter.model_input(session, cfg)
            runner = BatchRunner(session, adapter, spec, cfg, provider)
            runner.check()
        except ModelLoadError as exc:
            sock.send(m.encode(m.Fatal("inference", str(exc))))
            return
        if args.ring is None:  # first start: report the input so the ring can be sized, then attach
            log.info(describe(session, provider, spec=spec))
        sock.send(m.encode(m.Hello("inference", os.getpid(), provider, spec)))
        if args.ring is not None:
            ring = FrameRing.attach(args.ring)
        ring = serve(sock, ring, runner, cfg.batch_size, cfg.batch_timeout_ms / 1000.0)
    finally:
        if ring is not None:
            ring.close()
        sock.close()
        ctx.term()


def serve(sock: zmq.Socket, ring: FrameRing | None, runner: BatchRunner, batch_size: int,
          timeout_s: float) -> FrameRing | None:
    """Collect tasks into batches (full, or timed out from the first frame's arrival) until Stop.

    One batch runs on a helper thread while this thread decodes the previous
    batch's outputs, sends its replies and collects the next frames: the
    model's run and the Python around it overlap instead of adding up. A pipe
    wakes the poller when the run is done, so no time is lost polling for it.
    """
    pending: list[m.InferTask] = []
    first_at = 0.0
    running: Future | None = None
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(wake_r, zmq.POLLIN)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="session-run")

    def send(replies: list[m.InferDone]) -> None:
        for reply in replies:
            sock.send(m.encode(reply))

    try:
        while True:
            if pending and running is None:
                wait_ms = max(0.0, (first_at + timeout_s - time.monotonic()) * 1000.0)
            else:
                wait_ms = 1000.0  # new frames or the end of the running batch wake us first
            events = dict(poller.poll(wait_ms))
            if wake_r in events:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
            if sock in events:
                while True:
                    try:
                        raw = sock.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    msg = m.to_inference.decode(raw)
                    if isinstance(msg, m.Stop):
                        if running is not None:
                            send(runner.finish(running.result()))
                        return ring
                    if isinstance(msg, m.Attach):
                        ring = FrameRing.attach(msg.ring)
                        continue
                    if not pending:
                        first_at = time.monotonic()
                    pending.append(msg)
            done = None
            if running is not None and running.done():
                done, running = running.result(), None
            # Start the next batch before finishing the last one, so the two overlap.
            while running is None and pending and (len(pending) >= batch_size
                                                   or time.monotonic() >= first_at + timeout_s):
                tasks, pending = pending[:batch_size], pending[batch_size:]
                first_at = time.monotonic()
                assert ring is not None, "inference got a task before the ring was attached"
                batch, stale = runner.prepare(ring, tasks)
                send(stale)
                if batch.tasks:
                    running = pool.submit(runner.infer, batch)
                    running.add_done_callback(lambda _: os.write(wake_w, b"."))
            if done is not None:
                send(runner.finish(done))
    finally:
        pool.shutdown(wait=True)
        os.close(wake_r)
        os.close(wake_w)
