"""The inference process: owns the one onnxruntime session and batches frames from every stream.

Workers have already letterboxed each frame into its slot's tensor area, so
a batch is only a stack of ready tensors (one copy, none for a model that
runs one frame at a time). A batch is flushed when it is full or when its
first frame has waited `batch_timeout_ms`, so latency stays bounded when
traffic is thin and throughput grows when it is heavy.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import zmq

from pipeless.protocol import messages as m
from pipeless.protocol.child import become_child
from pipeless.protocol.launch import unpack
from pipeless.shm.ring import FrameRing, StaleHandle
from pipeless.workers.inference.adapters import get_adapter
from pipeless.workers.inference.providers import ModelLoadError, describe, open_session

log = logging.getLogger("pipeless.inference")


class BatchRunner:
    """Runs one batch of slots through the session and turns outputs into detections per frame."""

    def __init__(self, session, adapter, spec: m.ModelInput, cfg) -> None:
        self.session = session
        self.adapter = adapter
        self.spec = spec
        self.cfg = cfg
        self.output_names = [o.name for o in session.get_outputs()]
        self.batches = 0
        self.last_error = ""

    def check(self) -> None:
        """Run one zero frame through the model and the adapter, so a model/adapter mismatch is a
        one-line error at start instead of a failure on every frame (it also warms the provider up)."""
        tensor = np.zeros(self.spec.shape, np.float32)
        try:
            outputs = self._infer([tensor])
            self.adapter.decode(outputs, [(self.spec.width, self.spec.height)], self.spec, self.cfg)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{self.cfg.model}: adapter {self.cfg.adapter!r} does not fit this model: "
                                 f"{first}") from None

    def run(self, ring: FrameRing, tasks: list[m.InferTask]) -> list[m.InferDone]:
        live: list[m.InferTask] = []
        tensors: list[np.ndarray] = []
        sizes: list[tuple[int, int]] = []
        replies: list[m.InferDone] = []
        for task in tasks:
            try:
                tensors.append(ring.tensor_view(task.handle, self.spec.shape))
            except StaleHandle as exc:
                replies.append(m.InferDone(task.handle, [], 0, error=str(exc)))
                continue
            hdr = ring.header(task.handle.slot)
            sizes.append((int(hdr["width"][0]), int(hdr["height"][0])))
            live.append(task)
        if not live:
            return replies
        self.batches += 1
        try:
            outputs = self._infer(tensors)
            per_frame = self.adapter.decode(outputs, sizes, self.spec, self.cfg)
        except Exception as exc:  # one bad batch fails its frames, not the process
            message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            if message != self.last_error:
                log.warning("inference: batch failed: %s", message)
                self.last_error = message
            return replies + [m.InferDone(t.handle, [], len(live), self.batches, error=message) for t in live]
        for i, task in enumerate(live):
            raw = self.adapter.raw(outputs, i)
            replies.append(m.InferDone(task.handle, per_frame[i], len(live), self.batches, raw))
        return replies

    def _infer(self, tensors: list[np.ndarray]) -> list[np.ndarray]:
        name = self.spec.name
        if self.spec.max_batch == 1:
            # Fixed batch of one inside the graph: run frame by frame, straight from the slot.
            runs = [self.session.run(None, {name: t[None]}) for t in tensors]
            return [np.concatenate([r[k] for r in runs], axis=0) for k in range(len(self.output_names))]
        batch = np.stack(tensors) if len(tensors) > 1 else tensors[0][None]
        return self.session.run(None, {name: batch})


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
            runner = BatchRunner(session, adapter, spec, cfg)
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
    """Collect tasks into batches (full, or timed out from the first frame's arrival) until Stop."""
    pending: list[m.InferTask] = []
    first_at = 0.0
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while True:
        if pending:
            wait_ms = max(0.0, (first_at + timeout_s - time.monotonic()) * 1000.0)
        else:
            wait_ms = 1000.0
        if poller.poll(wait_ms):
            while True:
                try:
                    raw = sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                msg = m.to_inference.decode(raw)
                if isinstance(msg, m.Stop):
                    return ring
                if isinstance(msg, m.Attach):
                    ring = FrameRing.attach(msg.ring)
                    continue
                if not pending:
                    first_at = time.monotonic()
                pending.append(msg)
        while pending and (len(pending) >= batch_size or time.monotonic() >= first_at + timeout_s):
            batch, pending = pending[:batch_size], pending[batch_size:]
            assert ring is not None, "inference got a task before the ring was attached"
            for reply in runner.run(ring, batch):
                sock.send(m.encode(reply))
            first_at = time.monotonic()
