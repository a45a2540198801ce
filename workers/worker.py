"""A worker process: attaches the ring once, then runs filter stages on slot views as tasks arrive.

Tasks come over a DEALER socket from the orchestrator's ROUTER, which hands
each worker at most a couple of tasks at a time, so a slow frame never
queues others behind it. Pixels are never received or sent: a task names a
slot, the worker changes the frame in place and replies with the
detections and outputs, a few hundred bytes.
"""

from __future__ import annotations

import logging
import os

import cv2
import zmq

from pipeless.orchestrator.config import usable_cores
from pipeless.orchestrator.stages import Stage, plan_stages
from pipeless.protocol import messages as m
from pipeless.protocol.child import become_child
from pipeless.protocol.launch import ChildArgs, unpack
from pipeless.shm.ring import FrameRing, StaleHandle
from pipeless.workers.filters.base import Filter, FilterLoadError
from pipeless.workers.filters.chain import FilterChain
from pipeless.workers.filters.registry import build_filter
from pipeless.workers.frame import Frame
from pipeless.workers.inference.letterbox import letterbox_into

log = logging.getLogger("pipeless.worker")


def share_cores(workers: int) -> int:
    """Size this worker's OpenCV thread pool to its share of the cores.

    OpenCV gives every process a pool as large as the machine: N workers
    would run N x cores threads on the same cores, and on 16 cores the
    bench measured that contention costing more than the parallelism gave.
    The workers themselves are the parallelism; each keeps cores // N threads.
    """
    threads = max(1, usable_cores() // max(1, workers))
    cv2.setNumThreads(threads)
    return threads


def build_chains(args: ChildArgs, stages: list[Stage]) -> dict[str, FilterChain]:
    """One chain per filter stage; stateful filters live only in worker 0, where they are pinned."""
    by_name = {f.name: f for f in args.config.filters}
    chains: dict[str, FilterChain] = {}
    for stage in stages:
        if stage.kind != "filters" or (stage.stateful and args.index != 0):
            continue
        filters: list[Filter] = [build_filter(by_name[name]) for name in stage.filters]
        chains[stage.name] = FilterChain(filters)
    return chains


class Worker:
    def __init__(self, args: ChildArgs) -> None:
        assert args.ring is not None
        self.args = args
        self.ring = FrameRing.attach(args.ring)
        self.stages = {s.name: s for s in plan_stages(args.config)}
        self.chains = build_chains(args, list(self.stages.values()))
        self.model_input = args.model_input

    def handle(self, task: m.FilterTask) -> m.FilterDone:
        stage = self.stages[task.stage]
        try:
            image = self.ring.frame_view(task.handle)
        except StaleHandle as exc:
            return m.FilterDone(task.handle, task.stage, task.detections,
                                failures=[m.FilterFailure("worker", "stale", str(exc))])
        spec = self.model_input if stage.prepares_input else None
        tensor = self.ring.tensor_view(task.handle, spec.shape) if spec else None
        frame = Frame(image, task.stream, task.frame, task.pts, list(task.detections), tensor, spec)
        failures = self.chains[task.stage].run(frame) if stage.filters else []
        if spec is not None and tensor is not None:
            letterbox_into(image, tensor, spec)
        return m.FilterDone(task.handle, task.stage, frame.detections, frame.data, failures)

    def close(self) -> None:
        for chain in self.chains.values():
            chain.close()
        self.ring.close()


def main(blob: bytes) -> None:
    """Entry point of the worker process (started by the orchestrator with multiprocess)."""
    args = unpack(blob)
    become_child(args.parent_pid)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    share_cores(args.config.pipeline.worker_count)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.setsockopt(zmq.IDENTITY, args.identity)
    sock.connect(args.endpoint)
    worker = None
    try:
        try:
            worker = Worker(args)
        except FilterLoadError as exc:
            sock.send(m.encode(m.Fatal("worker", str(exc))))
            return
        sock.send(m.encode(m.Hello("worker", os.getpid())))
        while True:
            msg = m.to_worker.decode(sock.recv())
            if isinstance(msg, m.Stop):
                break
            sock.send(m.encode(worker.handle(msg)))
    finally:
        if worker is not None:
            worker.close()
        sock.close()
        ctx.term()
