"""Decoder and writer threads tell the router thread what happened, over one inproc socket.

ZeroMQ sockets belong to one thread each, so every emitting thread gets its
own PUSH socket (lazily, thread-local) onto the router's PULL: the router
then wakes on events in the same poll as worker replies, with no timers.
"""

from __future__ import annotations

import threading

import msgspec
import zmq

EVENTS_ENDPOINT = "inproc://pipeless-events"


class Event(msgspec.Struct, array_like=True):
    kind: str  # "frame", "dropped", "eos", "written"
    stream: int
    index: int


_encode = msgspec.msgpack.Encoder().encode
decode_event = msgspec.msgpack.Decoder(Event).decode


class EventBus:
    def __init__(self, ctx: zmq.Context) -> None:
        self.ctx = ctx
        self._local = threading.local()
        self._sockets: list[zmq.Socket] = []
        self._lock = threading.Lock()

    def bind(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.PULL)
        sock.bind(EVENTS_ENDPOINT)
        with self._lock:
            self._sockets.append(sock)
        return sock

    def emit(self, kind: str, stream: int, index: int) -> None:
        sock = getattr(self._local, "sock", None)
        if sock is None:
            sock = self.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(EVENTS_ENDPOINT)
            self._local.sock = sock
            with self._lock:
                self._sockets.append(sock)
        sock.send(_encode(Event(kind, stream, index)))

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                sock.close(linger=0)
            self._sockets.clear()
