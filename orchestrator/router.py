"""The router: moves every frame through its stages and out, in order, on one thread.

It owns all of the orchestrator's ZeroMQ sockets and polls them together:
worker replies (ROUTER), inference replies (ROUTER) and decoder events
(inproc PULL). Work goes to workers by credit (at most CREDIT tasks each),
so a slow frame never queues others behind it and a dead worker holds few.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

import zmq

from pipeless.orchestrator.children import Child, Supervisor
from pipeless.orchestrator.config import TASKS_PER_WORKER
from pipeless.orchestrator.decoder import Decoder, ReadyQueue
from pipeless.orchestrator.events import EventBus, decode_event
from pipeless.orchestrator.outputs import ResultSink, VideoOutput
from pipeless.orchestrator.reorder import OrderGate
from pipeless.orchestrator.sources import SourceInfo
from pipeless.orchestrator.stages import Stage
from pipeless.orchestrator.stats import Stats
from pipeless.orchestrator.ticket import Ticket
from pipeless.protocol import messages as m
from pipeless.protocol.result import FrameResult
from pipeless.shm.allocator import SlotAllocator

log = logging.getLogger("pipeless")

CREDIT = TASKS_PER_WORKER  # tasks a worker may hold at once
MAX_ATTEMPTS = 2  # a frame that killed this many children skips the stage (recorded as a crash)
SUPERVISE_EVERY_S = 0.2


class PipelineError(Exception):
    """A one-line reason the whole run cannot go on (a filter that cannot load, a crash loop)."""


@dataclass
class StreamState:
    index: int
    id: str
    source: str
    info: SourceInfo
    ready: ReadyQueue
    gate: OrderGate[Ticket] = field(default_factory=OrderGate)
    pinned: dict[int, OrderGate[Ticket]] = field(default_factory=dict)  # stateful stage -> gate
    decoder: Decoder | None = None
    output: VideoOutput | None = None
    total: int | None = None  # known at end of stream
    published: int = 0
    dropped: int = 0
    finished: bool = False
    started_at: float = field(default_factory=time.monotonic)

    @property
    def drained(self) -> bool:
        return self.total is not None and self.gate.next >= self.total


class Router:
    def __init__(self, stages: list[Stage], streams: dict[int, StreamState], allocator: SlotAllocator,
                 supervisor: Supervisor, sockets: dict[str, zmq.Socket], events: zmq.Socket,
                 sink: ResultSink, stop: threading.Event, on_tick=None, stats: Stats | None = None,
                 keep_running: bool = False, on_result: Callable[[StreamState, Ticket], None] | None = None,
                 ) -> None:
        self.stages = stages
        self.streams = streams  # by stream index; streams come and go through the control API
        self.keep_running = keep_running  # a controlled pipeline waits for new streams when all have ended
        self.on_result = on_result
        self.commands: queue.SimpleQueue[tuple[Callable[[], Any], Future]] = queue.SimpleQueue()
        self.allocator = allocator
        self.sup = supervisor
        self.sockets = sockets
        self.events = events
        self.sink = sink
        self.stop = stop
        self.on_tick = on_tick
        self.stats = stats or Stats()
        self.queues: dict[int, deque[Ticket]] = {i: deque() for i, s in enumerate(stages)}
        self.infer_backlog: deque[Ticket] = deque()
        self.attempts: dict[tuple[int, int], int] = {}
        self._rr = 0
        for stream in streams.values():
            self._gates_for(stream)

    def _gates_for(self, stream: StreamState) -> None:
        for i, stage in enumerate(self.stages):
            if stage.stateful:
                stream.pinned[i] = OrderGate()

    # -- commands from other threads (control API) ---------------------------
    def call(self, fn: Callable[[], Any]) -> Future:
        """Run `fn` on the router thread (the only one that may touch streams and sockets)."""
        future: Future = Future()
        self.commands.put((fn, future))
        return future

    def _run_commands(self) -> None:
        while True:
            try:
                fn, future = self.commands.get_nowait()
            except queue.Empty:
                return
            try:
                future.set_result(fn())
            except Exception as exc:
                future.set_exception(exc)

    def add_stream(self, stream: StreamState) -> None:
        """Router thread: start routing a new stream (its decoder is started by the caller)."""
        self._gates_for(stream)
        self.streams[stream.index] = stream

    def remove_stream(self, stream_id: str) -> StreamState:
        """Router thread: stop a stream's decoder; its frames in flight still finish and leave in order."""
        for stream in self.streams.values():
            if stream.id == stream_id and not stream.finished:
                if stream.decoder is not None:
                    stream.decoder.halt.set()
                return stream
        raise KeyError(stream_id)
    # -- main loop --------------------------------------------------------
    def run(self) -> bool:
        """Route until every stream is drained (True) or a stop is asked for (False)."""
        poller = zmq.Poller()
        for sock in (*self.sockets.values(), self.events):
            poller.register(sock, zmq.POLLIN)
        last_check = 0.0
        while not self.stop.is_set():
            self._run_commands()
            for sock, _ in poller.poll(50):
                if sock is self.events:
                    self._drain_events()
                else:
                    self._drain_replies(sock)
            self._dispatch()
            now = time.monotonic()
            if now - last_check >= SUPERVISE_EVERY_S:
                last_check = now
                self._supervise()
                self.sink.flush()
                if self.on_tick:
                    self.on_tick()
            if self._all_done():
                return True
        return False

    def _all_done(self) -> bool:
        done = True
        for index, s in list(self.streams.items()):
            if not s.finished:
                if not s.drained:
                    done = False
                    continue
                s.finished = True
                if s.output is not None:
                    s.output.finish()
                if self.keep_running:
                    del self.streams[index]
        return done and not self.keep_running

    # -- events from decoders ----------------------------------------------
    def _drain_events(self) -> None:
        while True:
            try:
                ev = decode_event(self.events.recv(zmq.NOBLOCK))
            except zmq.Again:
                return
            stream = self.streams.get(ev.stream)
            if stream is None:
                continue
            if ev.kind == "dropped":
                stream.dropped += 1
                self.stats.drop(stream.id, "ring_full")
                stream.gate.skip(ev.index)
                for gate in stream.pinned.values():
                    gate.skip(ev.index)
                self._publish_ready(stream)
            elif ev.kind == "missed" and ev.index > 0:
                stream.dropped += ev.index
                self.stats.drop(stream.id, "disconnected", ev.index)
            elif ev.kind == "eos":
                stream.total = ev.index
                self._publish_ready(stream)

    # -- replies from children ---------------------------------------------
    def _drain_replies(self, sock: zmq.Socket) -> None:
        while True:
            try:
                identity, payload = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            child = self.sup.children.get(identity)
            if child is None:
                continue  # a previous incarnation's last words
            decoder = m.from_inference if child.role == "inference" else m.from_worker
            msg = decoder.decode(payload)
            if isinstance(msg, m.Fatal):
                raise PipelineError(msg.message)
            if isinstance(msg, m.Hello):
                self._on_hello(child, msg)
                continue
            ticket = child.inflight.pop((msg.handle.slot, msg.handle.generation), None)
            if ticket is None:
                continue
            stage_name = self.stages[ticket.stage].name
            self.stats.stage(self.streams[ticket.stream].id, stage_name, time.monotonic() - ticket.sent_at)
            if isinstance(msg, m.InferDone):
                self.stats.batch(msg.batch_id, msg.batch_size, self.streams[ticket.stream].id)
                if msg.error:
                    ticket.failures.append(m.FilterFailure("inference", "error", msg.error))
                    self.stats.failure("inference", "error")
                ticket.detections = list(msg.detections)
                if msg.raw:
                    ticket.data["inference"] = msg.raw
            else:
                ticket.detections = list(msg.detections)
                ticket.data.update(msg.data)
                ticket.failures.extend(msg.failures)
                for failure in msg.failures:
                    self.stats.failure(failure.filter, failure.kind)
            self._advance(ticket)

    def _on_hello(self, child: Child, msg: m.Hello) -> None:
        child.ready = True
        if child.role == "inference" and child.incarnation > 0:
            while self.infer_backlog:
                self._send_infer(child, self.infer_backlog.popleft())

    # -- moving frames through the plan ------------------------------------
    def _advance(self, ticket: Ticket) -> None:
        ticket.stage += 1
        self._enter(ticket)

    def _enter(self, ticket: Ticket) -> None:
        if ticket.stage >= len(self.stages):
            self._complete(ticket)
            return
        stage = self.stages[ticket.stage]
        if stage.kind == "infer":
            infer = self._inference()
            if infer is None:
                self.infer_backlog.append(ticket)
            else:
                self._send_infer(infer, ticket)
        elif stage.stateful:
            gate = self.streams[ticket.stream].pinned[ticket.stage]
            gate.push(ticket.frame, ticket)
            self.queues[ticket.stage].extend(gate.pop_ready())
        else:
            self.queues[ticket.stage].append(ticket)

    def _inference(self) -> Child | None:
        for child in self.sup.of_role("inference"):
            if child.ready:
                return child
        return None

    def _send_infer(self, child: Child, ticket: Ticket) -> None:
        ticket.sent_at = time.monotonic()
        child.inflight[(ticket.handle.slot, ticket.handle.generation)] = ticket
        task = m.InferTask(ticket.handle, self.streams[ticket.stream].id, ticket.frame)
        self._send(child, task)

    def _send_filter(self, child: Child, ticket: Ticket) -> None:
        ticket.sent_at = time.monotonic()
        child.inflight[(ticket.handle.slot, ticket.handle.generation)] = ticket
        task = m.FilterTask(ticket.handle, self.streams[ticket.stream].id, ticket.frame, ticket.pts,
                            self.stages[ticket.stage].name, ticket.detections)
        self._send(child, task)

    def _send(self, child: Child, task: m.FilterTask | m.InferTask) -> None:
        """Send to one child. If it has just died, the ticket stays in its inflight list and is
        handed to its successor when the supervisor reaps it (the socket knows before we do)."""
        try:
            self.sockets[child.role].send_multipart([child.identity, m.encode(task)])
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            child.ready = False

    def _fresh(self) -> Ticket | None:
        """The next decoded frame, taking streams in turn so one busy stream cannot starve another."""
        streams = list(self.streams.values())
        n = len(streams)
        for k in range(n):
            stream = streams[(self._rr + k) % n]
            ticket = stream.ready.take()
            if ticket is not None:
                self._rr = (self._rr + k + 1) % n
                return ticket
        return None

    def _dispatch(self) -> None:
        if not self.stages:
            while (ticket := self._fresh()) is not None:
                self._complete(ticket)
            return
        if self.stages[0].stateful:  # fresh frames queue up in order behind the stateful gate
            while (ticket := self._fresh()) is not None:
                self._enter(ticket)
        workers = [c for c in self.sup.of_role("worker") if c.ready]
        # Stateful stages first, to worker 0 only, in the order their gates released them.
        pinned = next((c for c in workers if c.index == 0), None)
        if pinned is not None:
            for i, stage in enumerate(self.stages):
                while stage.stateful and self.queues[i] and len(pinned.inflight) < CREDIT:
                    self._send_filter(pinned, self.queues[i].popleft())
        for child in sorted(workers, key=lambda c: len(c.inflight)):
            while len(child.inflight) < CREDIT:
                ticket = self._next_stateless()
                if ticket is None:
                    break
                self._send_filter(child, ticket)

    def _next_stateless(self) -> Ticket | None:
        """Later stages first (they free slots soonest), fresh frames last."""
        for i in range(len(self.stages) - 1, -1, -1):
            stage = self.stages[i]
            if stage.kind == "filters" and not stage.stateful and self.queues[i]:
                return self.queues[i].popleft()
        if self.stages[0].kind == "filters" and not self.stages[0].stateful:
            return self._fresh()
        return None

    # -- leaving the pipeline ----------------------------------------------
    def _complete(self, ticket: Ticket) -> None:
        stream = self.streams[ticket.stream]
        stream.gate.push(ticket.frame, ticket)
        self._publish_ready(stream)

    def _publish_ready(self, stream: StreamState) -> None:
        for ticket in stream.gate.pop_ready():
            result = FrameResult(stream.id, ticket.frame, ticket.pts, ticket.width, ticket.height,
                                 ticket.detections, ticket.data, ticket.failures)
            self.sink.emit(stream.id, result)
            self.stats.done(stream.id, time.monotonic() - ticket.decoded_at)
            if self.on_result is not None:
                self.on_result(stream, ticket)
            stream.published += 1
            if stream.output is not None:
                stream.output.put(ticket)
            else:
                self.allocator.release(ticket.handle)

    # -- supervision -------------------------------------------------------
    def _supervise(self) -> None:
        for child in self.sup.reap_dead():
            orphans = list(child.inflight.values())
            child.inflight.clear()
            for ticket in reversed(orphans):
                key = (ticket.handle.slot, ticket.handle.generation)
                # A worker runs its tasks one at a time, in the order sent: the oldest was running when it
                # died, the others only waited behind it and must not be blamed (they would lose their stage
                # to a poison frame sharing their worker). The inference process runs a whole batch at once.
                if child.role == "inference" or ticket is orphans[0]:
                    self.attempts[key] = self.attempts.get(key, 0) + 1
                if self.attempts.get(key, 0) >= MAX_ATTEMPTS:
                    ticket.failures.append(m.FilterFailure(
                        self.stages[ticket.stage].name, "crash",
                        f"{child.label} died {MAX_ATTEMPTS} times on this frame; stage skipped"))
                    self.stats.failure(self.stages[ticket.stage].name, "crash")
                    self._advance(ticket)
                elif self.stages[ticket.stage].kind == "infer":
                    self.infer_backlog.appendleft(ticket)
                else:
                    self.queues[ticket.stage].appendleft(ticket)
