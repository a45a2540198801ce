"""One run of a pipeline: set everything up, route until done or stopped, and leave nothing behind.

Order matters. The inference process starts first because the model decides
the size of each slot's tensor area; then the ring is created; then the
workers attach it; only then do decoders start filling slots. Teardown runs
in reverse from a `finally`, so Ctrl-C, SIGTERM and errors all end with no
child process, no socket file and no shared-memory segment left.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass

import zmq

from pipeless.orchestrator.children import CrashLoop, Supervisor
from pipeless.orchestrator.config import PipelineConfig
from pipeless.orchestrator.decoder import Decoder, ReadyQueue
from pipeless.orchestrator.events import EventBus
from pipeless.orchestrator.outputs import OutputError, ResultSink, VideoOutput
from pipeless.orchestrator.progress import Progress
from pipeless.orchestrator.router import PipelineError, Router, StreamState
from pipeless.orchestrator.sources import SourceError, open_capture, probe
from pipeless.orchestrator.stages import plan_stages
from pipeless.orchestrator.stats import Stats
from pipeless.protocol import messages as m
from pipeless.protocol.runtime import RuntimeDir, reclaim_stale_runtime_dirs
from pipeless.shm.allocator import SlotAllocator
from pipeless.shm.ring import FrameRing
from pipeless.shm.segment import reclaim_stale_segments

log = logging.getLogger("pipeless")

CHILD_START_TIMEOUT_S = 120.0


@dataclass
class RunSummary:
    completed: bool  # every stream ran to its end (False: stopped by a signal)
    frames: dict[str, int]
    dropped: dict[str, int]
    seconds: float
    provider: str


def _wait_ready(sup: Supervisor, sockets: dict[str, zmq.Socket], role: str, stop: threading.Event) -> None:
    """Block until every child of `role` said Hello; a Fatal or an early death is a one-line error."""
    sock = sockets[role]
    deadline = time.monotonic() + CHILD_START_TIMEOUT_S
    while any(not c.ready for c in sup.of_role(role)):
        if stop.is_set():
            return
        if time.monotonic() > deadline:
            raise PipelineError(f"{role} did not start within {CHILD_START_TIMEOUT_S:.0f} s")
        if sock.poll(100):
            identity, payload = sock.recv_multipart()
            child = sup.children.get(identity)
            if child is None:
                continue
            msg = (m.from_inference if role == "inference" else m.from_worker).decode(payload)
            if isinstance(msg, m.Fatal):
                raise PipelineError(msg.message)
            if isinstance(msg, m.Hello):
                child.ready = True
                child.provider = msg.provider
                child.model_input = msg.model_input
        for child in sup.of_role(role):
            if not child.ready and not child.process.is_alive():
                raise PipelineError(f"{child.label} exited during start (exit code {child.process.exitcode})")


def run_pipeline(cfg: PipelineConfig, stop: threading.Event | None = None, stats: Stats | None = None) -> RunSummary:
    """Run `cfg` to completion; raises PipelineError/SourceError/OutputError with one-line messages."""
    stop = stop or threading.Event()
    started = time.monotonic()
    for name in reclaim_stale_segments():
        log.info("pipeless: reclaimed shared memory %s left by a killed run", name)
    reclaim_stale_runtime_dirs()

    runtime = RuntimeDir()
    ctx = zmq.Context()
    bus = EventBus(ctx)
    sockets: dict[str, zmq.Socket] = {}
    sup: Supervisor | None = None
    ring: FrameRing | None = None
    streams: list[StreamState] = []
    sink: ResultSink | None = None
    decoders_stop = threading.Event()
    provider = ""
    try:
        # Sources first: a missing file or dead camera should fail before any process starts.
        caps = []
        for i, s in enumerate(cfg.streams):
            try:
                cap = open_capture(s.input)
                caps.append((cap, probe(cap, s.input)))
            except SourceError as exc:
                raise SourceError(f"streams[{i}] ({s.id}): {exc}") from None
        # Bind the results socket early: subscribers connecting now miss no frame (ZeroMQ's slow joiner).
        sink = ResultSink(ctx, cfg.results.publish, cfg.results.file)
        endpoints = {role: runtime.endpoint(role) for role in ("worker", "inference")}
        for role, endpoint in endpoints.items():
            sock = ctx.socket(zmq.ROUTER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            sock.bind(endpoint)
            sockets[role] = sock
        sup = Supervisor(cfg, endpoints)

        stages = plan_stages(cfg)
        if cfg.inference is not None:
            sup.spawn("inference", 0)
            _wait_ready(sup, sockets, "inference", stop)
            infer = sup.of_role("inference")[0]
            sup.model_input = infer.model_input
            provider = infer.provider

        width = max([cfg.pipeline.max_width] + [info.width for _, info in caps])
        height = max([cfg.pipeline.max_height] + [info.height for _, info in caps])
        tensor_bytes = sup.model_input.nbytes if sup.model_input else 0
        ring = FrameRing.create(cfg.pipeline.slots, width * height * 3, tensor_bytes)
        sup.ring = ring.layout
        allocator = SlotAllocator(ring)
        for child in sup.of_role("inference"):
            sockets["inference"].send_multipart([child.identity, m.encode(m.Attach(ring.layout))])

        if any(stage.kind == "filters" for stage in stages):
            n_workers = cfg.pipeline.workers or os.cpu_count() or 1
            for i in range(n_workers):
                sup.spawn("worker", i)
            _wait_ready(sup, sockets, "worker", stop)

        events = bus.bind()

        def release(ticket) -> None:
            allocator.release(ticket.handle)

        for i, (s, (cap, info)) in enumerate(zip(cfg.streams, caps)):
            state = StreamState(i, s.id, s.input, info, ReadyQueue())
            if s.output:
                state.output = VideoOutput(s.output, s.fps or info.fps, info.width, info.height, s.codec,
                                           ring, release)
            streams.append(state)
        for state, (cap, info) in zip(streams, caps):
            state.decoder = Decoder(state.index, state.id, cap, info, allocator, state.ready, bus.emit,
                                    decoders_stop)
        caps = []
        for state in streams:
            if state.output is not None:
                state.output.start()
            state.decoder.start()

        progress = Progress(streams)
        router = Router(stages, streams, allocator, sup, sockets, events, sink, stop, progress.update, stats)
        try:
            completed = router.run()
        except CrashLoop as exc:
            raise PipelineError(str(exc)) from None
        finally:
            progress.close()
        for state in streams:
            if state.decoder and state.decoder.error:
                log.warning("pipeless: stream %s ended on an error: %s", state.id, state.decoder.error)
        return RunSummary(completed, {s.id: s.published for s in streams},
                          {s.id: s.dropped for s in streams}, time.monotonic() - started, provider)
    finally:
        decoders_stop.set()
        for state in streams:
            if state.decoder is not None and state.decoder.is_alive():
                state.decoder.join(1.0)
        for state in streams:
            if state.output is not None and state.output.is_alive():
                state.output.finish()
                state.output.join(5.0)
        if sup is not None:
            def send_stop(child) -> None:
                try:
                    sockets[child.role].send_multipart([child.identity, m.encode(m.Stop())], zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass
            sup.stop_all(send_stop)
        if sink is not None:
            sink.close()
        bus.close()
        ctx.destroy(linger=0)
        if ring is not None:
            ring.close()
        runtime.remove()


def install_signal_handlers(stop: threading.Event) -> None:
    """First Ctrl-C or SIGTERM: finish cleanly. A second Ctrl-C: stop now (teardown still runs)."""

    def handler(signum, _frame) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
