"""The inproc event bus between decoder/writer threads and the router thread."""

from __future__ import annotations

import threading

import zmq

from pipeless.orchestrator.events import EventBus, decode_event


def _emitting(bus: EventBus, n: int, errors: list[BaseException], stream: int = 0) -> threading.Thread:
    def run() -> None:
        try:
            for i in range(n):
                bus.emit("frame", stream, i)
        except BaseException as exc:  # what a decoder thread would die of
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_events_arrive_in_order_from_each_thread() -> None:
    ctx = zmq.Context()
    bus = EventBus(ctx)
    pull = bus.bind()
    errors: list[BaseException] = []
    threads = [_emitting(bus, 200, errors, stream) for stream in range(3)]
    for t in threads:
        t.join()
    got: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for _ in range(600):
        ev = decode_event(pull.recv())
        got[ev.stream].append(ev.index)
    assert got == {s: list(range(200)) for s in range(3)} and errors == []
    bus.close()
    ctx.destroy(linger=0)


def test_a_thread_emitting_during_and_after_shutdown_does_not_fail() -> None:
    """A decoder blocked in a camera read wakes up after the pipeline closed the bus and destroyed the
    context: its events are dropped quietly instead of killing the thread with a ZMQError."""
    ctx = zmq.Context()
    bus = EventBus(ctx)
    pull = bus.bind()
    errors: list[BaseException] = []
    racing = [_emitting(bus, 5000, errors, s) for s in range(4)]  # still sending while we close
    first = decode_event(pull.recv())
    bus.close()
    for t in racing:
        t.join()
    late = _emitting(bus, 10, errors)  # a new thread after close: would open a fresh socket
    late.join()
    ctx.destroy(linger=0)
    after = _emitting(bus, 10, errors)  # and after the context is gone
    after.join()
    assert first.kind == "frame" and errors == []
