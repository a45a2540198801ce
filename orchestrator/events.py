"""Decoder and writer threads tell the router thread what happened, over one inproc socket.

ZeroMQ sockets belong to one thread each, so every emitting thread gets its
own PUSH socket (lazily, thread-local) onto the router's PULL: the router
then wakes on events in the same poll as worker replies, with no timers.
"""

from __future__ import annotations

import threading
import time

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
        self._closed = False

    def bind(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.PULL)
        sock.bind(EVENTS_ENDPOINT)
        with self._lock:
            self._sockets.append(sock)
        return sock

    def emit(self, kind: str, stream: int, index: int) -> None:
        """Send one event from this thread. After close() it does nothing: a decoder still blocked in a
        camera read when the pipeline shuts down wakes up later and must not trip over a closed socket.

        The lock keeps close() (on the main thread) from closing a socket while its own thread sends on
        it, which ZeroMQ does not allow. Sends never block while holding it: with the router gone the
        queue could fill and close() would wait forever.
        """
        payload = _encode(Event(kind, stream, index))
        while True:
            with self._lock:
                if self._closed:
                    return
                sock = getattr(self._local, "sock", None)
                if sock is None:
                    sock = self.ctx.socket(zmq.PUSH)
                    sock.setsockopt(zmq.LINGER, 0)
                    sock.connect(EVENTS_ENDPOINT)
                    self._local.sock = sock
                    self._sockets.append(sock)
                try:
                    sock.send(payload, zmq.NOBLOCK)
                    return
                except zmq.Again:
                    pass  # the router is behind (or gone): wait outside the lock
            time.sleep(0.001)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for sock in self._sockets:
                sock.close(linger=0)
            self._sockets.clear()
