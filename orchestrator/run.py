"""One run of a pipeline: set everything up, route until done or stopped, and leave nothing behind.

Order matters. The inference process starts first because the model decides
the size of each slot's tensor area; then the ring is created; then the
workers attach it; only then do decoders start filling slots. Teardown runs
in reverse from `close()`, called from a `finally`, so Ctrl-C, SIGTERM and
errors all end with no child process, no socket file and no shared-memory
segment left.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable

import zmq

from pipeless.orchestrator.children import CrashLoop, Supervisor
from pipeless.orchestrator.config import PipelineConfig, StreamConfig, frames_in_flight, ring_slots
from pipeless.orchestrator.decoder import Decoder, ReadyQueue
from pipeless.orchestrator.events import EventBus
from pipeless.orchestrator.outputs import ResultSink, VideoOutput
from pipeless.orchestrator.progress import Progress
from pipeless.orchestrator.router import PipelineError, Router, StreamState
from pipeless.orchestrator.sources import SourceError, SourceInfo, open_capture, probe
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


class Pipeline:
    """The orchestrator's live objects for one run; `start`, `run`, `close`, and streams in between."""

    def __init__(self, cfg: PipelineConfig, stop: threading.Event | None = None,
                 stats: Stats | None = None) -> None:
        self.cfg = cfg
        self.stop = stop or threading.Event()
        self.stats = stats or Stats()
        self.started = time.monotonic()
        self.runtime: RuntimeDir | None = None
        self.ctx = zmq.Context()
        self.bus = EventBus(self.ctx)
        self.sockets: dict[str, zmq.Socket] = {}
        self.sup: Supervisor | None = None
        self.ring: FrameRing | None = None
        self.allocator: SlotAllocator | None = None
        self.sink: ResultSink | None = None
        self.router: Router | None = None
        self.streams: dict[int, StreamState] = {}  # every stream ever started, for summary and teardown
        self.stages = plan_stages(cfg)
        self.provider = ""
        self._next_stream = 0
        self._decoders_stop = threading.Event()
        self.on_result: Callable[[StreamState, object], None] | None = None

    # -- start -----------------------------------------------------------------
    def start(self) -> None:
        cfg = self.cfg
        for name in reclaim_stale_segments():
            log.info("pipeless: reclaimed shared memory %s left by a killed run", name)
        reclaim_stale_runtime_dirs()
        self.runtime = RuntimeDir()
        # Sources first: a missing file or dead camera fails before any process starts.
        opened: list[tuple[StreamConfig, object, SourceInfo]] = []
        try:
            for i, s in enumerate(cfg.streams):
                try:
                    cap = open_capture(s.input)
                    opened.append((s, cap, probe(cap, s.input)))
                except SourceError as exc:
                    raise SourceError(f"streams[{i}] ({s.id}): {exc}") from None
            # Bind the results socket early: subscribers connecting now miss no frame (slow joiner).
            self.sink = ResultSink(self.ctx, cfg.results.publish, cfg.results.file)
            self._start_children()
            width = max([cfg.pipeline.max_width] + [info.width for _, _, info in opened])
            height = max([cfg.pipeline.max_height] + [info.height for _, _, info in opened])
            self._create_ring(width, height)
            if any(stage.kind == "filters" for stage in self.stages):
                for i in range(cfg.pipeline.worker_count):
                    self.sup.spawn("worker", i)
                self._wait_ready("worker")
            events = self.bus.bind()
            self.router = Router(self.stages, {}, self.allocator, self.sup, self.sockets, events, self.sink,
                                 self.stop, None, self.stats, keep_running=bool(cfg.control.http),
                                 on_result=self._on_result)
            for s, cap, info in opened:
                state = self._make_stream(s, cap, info)
                self.router.add_stream(state)
            opened = []
            for state in self.streams.values():
                self._launch(state)
        finally:
            for _, cap, _ in opened:
                cap.release()

    def _start_children(self) -> None:
        assert self.runtime is not None
        endpoints = {role: self.runtime.endpoint(role) for role in ("worker", "inference")}
        for role, endpoint in endpoints.items():
            sock = self.ctx.socket(zmq.ROUTER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            sock.bind(endpoint)
            self.sockets[role] = sock
        self.sup = Supervisor(self.cfg, endpoints)
        if self.cfg.inference is not None:
            self.sup.spawn("inference", 0)
            self._wait_ready("inference")
            infer = self.sup.of_role("inference")[0]
            self.sup.model_input = infer.model_input
            self.provider = infer.provider

    def _create_ring(self, width: int, height: int) -> None:
        assert self.sup is not None
        tensor_bytes = self.sup.model_input.nbytes if self.sup.model_input else 0
        slots = ring_slots(self.cfg)
        need = frames_in_flight(self.cfg)
        if slots < need:
            log.warning("pipeline.slots = %d holds fewer frames than the workers and batches keep in flight (%d): "
                        "throughput is capped by the ring; leave it unset to size it automatically", slots, need)
        self.ring = FrameRing.create(slots, width * height * 3, tensor_bytes)
        self.sup.ring = self.ring.layout
        self.allocator = SlotAllocator(self.ring)
        for child in self.sup.of_role("inference"):
            self.sockets["inference"].send_multipart([child.identity, m.encode(m.Attach(self.ring.layout))])

    def _wait_ready(self, role: str) -> None:
        """Block until every child of `role` said Hello; a Fatal or an early death is a one-line error."""
        sup, sock = self.sup, self.sockets[role]
        assert sup is not None
        deadline = time.monotonic() + CHILD_START_TIMEOUT_S
        while any(not c.ready for c in sup.of_role(role)):
            if self.stop.is_set():
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

    # -- streams -----------------------------------------------------------------
    def _make_stream(self, s: StreamConfig, cap, info: SourceInfo) -> StreamState:
        assert self.ring is not None and self.allocator is not None
        self.ring.frame_buffer(0, info.width, info.height)  # ValueError if it does not fit a slot
        index = self._next_stream
        self._next_stream += 1
        state = StreamState(index, s.id, s.input, info, ReadyQueue())
        if s.output:
            state.output = VideoOutput(s.output, s.fps or info.fps, info.width, info.height, s.codec,
                                       self.ring, lambda t: self.allocator.release(t.handle))
        state.decoder = Decoder(index, s, cap, info, self.allocator, state.ready, self.bus.emit,
                                self._decoders_stop)
        self.streams[index] = state
        return state

    @staticmethod
    def _launch(state: StreamState) -> None:
        if state.output is not None:
            state.output.start()
        assert state.decoder is not None
        state.decoder.start()

    def add_stream(self, s: StreamConfig, timeout: float = 30.0) -> StreamState:
        """From any thread: open the source here, then hand the stream to the router thread."""
        assert self.router is not None and self.ring is not None
        if any(st.id == s.id and not st.finished for st in self.streams.values()):
            raise ValueError(f"stream {s.id!r} already exists")
        cap = open_capture(s.input)
        try:
            info = probe(cap, s.input)
            try:
                self.ring.frame_buffer(0, info.width, info.height)
            except ValueError:
                raise SourceError(f"{info.width}x{info.height} frames do not fit the ring's slots; "
                                  f"start the pipeline with larger pipeline.max_width/max_height") from None
        except BaseException:
            cap.release()
            raise
        state = self.router.call(lambda: self._add_on_router(s, cap, info)).result(timeout)
        return state

    def _add_on_router(self, s: StreamConfig, cap, info: SourceInfo) -> StreamState:
        assert self.router is not None
        state = self._make_stream(s, cap, info)
        self.router.add_stream(state)
        self._launch(state)
        return state

    def remove_stream(self, stream_id: str, timeout: float = 10.0) -> StreamState:
        assert self.router is not None
        return self.router.call(lambda: self.router.remove_stream(stream_id)).result(timeout)

    def live_streams(self) -> list[StreamState]:
        return [s for s in self.streams.values() if not s.finished]

    def _on_result(self, stream: StreamState, ticket) -> None:
        if self.on_result is not None:
            self.on_result(stream, ticket)

    # -- run and stop ------------------------------------------------------------
    def run(self, on_tick: Callable[[], None] | None = None) -> RunSummary:
        assert self.router is not None
        self.router.on_tick = on_tick
        try:
            completed = self.router.run()
        except CrashLoop as exc:
            raise PipelineError(str(exc)) from None
        for state in self.streams.values():
            if state.decoder and state.decoder.error:
                log.warning("pipeless: stream %s ended on an error: %s", state.id, state.decoder.error)
        return self.summary(completed)

    def summary(self, completed: bool) -> RunSummary:
        return RunSummary(completed, {s.id: s.published for s in self.streams.values()},
                          {s.id: s.dropped for s in self.streams.values()},
                          time.monotonic() - self.started, self.provider)

    def close(self) -> None:
        self._decoders_stop.set()
        for state in self.streams.values():
            if state.decoder is not None and state.decoder.is_alive():
                state.decoder.join(1.0)
        for state in self.streams.values():
            if state.output is not None and state.output.is_alive():
                state.output.finish()
                state.output.join(5.0)
        if self.sup is not None:
            def send_stop(child) -> None:
                try:
                    self.sockets[child.role].send_multipart([child.identity, m.encode(m.Stop())], zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass
            self.sup.stop_all(send_stop)
        if self.sink is not None:
            self.sink.close()
        self.bus.close()
        self.ctx.destroy(linger=0)
        if self.ring is not None:
            self.ring.close()
        if self.runtime is not None:
            self.runtime.remove()


def run_pipeline(cfg: PipelineConfig, stop: threading.Event | None = None,
                 stats: Stats | None = None, on_started: Callable[[Pipeline], None] | None = None) -> RunSummary:
    """Run `cfg` to completion; raises PipelineError/SourceError/OutputError with one-line messages."""
    from pipeless.orchestrator.control import ControlServer
    from pipeless.orchestrator.metrics import FpsMeter, MetricsPublisher, ProcessSampler

    pipeline = Pipeline(cfg, stop, stats)
    progress: Progress | None = None
    control: ControlServer | None = None
    publisher: MetricsPublisher | None = None
    try:
        pipeline.start()
        sampler, fps = ProcessSampler(pipeline), FpsMeter()
        if cfg.metrics.publish:
            publisher = MetricsPublisher(pipeline, cfg.metrics.publish, cfg.metrics.interval_s, sampler, fps)
            publisher.start()
        if cfg.control.http:
            control = ControlServer(pipeline, cfg.control.http, cfg.control.token, sampler, fps)
            control.start()
        if on_started is not None:
            on_started(pipeline)
        progress = Progress(pipeline.live_streams())
        return pipeline.run(progress.update)
    finally:
        if progress is not None:
            progress.close()
        if control is not None:
            control.stop()
        if publisher is not None:
            publisher.stop()
        pipeline.close()


def install_signal_handlers(stop: threading.Event) -> None:
    """First Ctrl-C or SIGTERM: finish cleanly. A second Ctrl-C: stop now (teardown still runs)."""

    def handler(signum, _frame) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
