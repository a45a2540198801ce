"""Where finished frames go: the annotated video per stream, and the results (PUB socket + JSONL).

Video encoding is slow and runs in a thread per stream, fed in frame order,
writing straight from the slot; the slot is freed only once it is written.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Callable

import cv2
import zmq

from pipeless.orchestrator.ticket import Ticket
from pipeless.protocol.endpoints import EndpointError, parse_spec
from pipeless.protocol.result import FrameResult, encode_json
from pipeless.shm.ring import FrameRing


class OutputError(Exception):
    pass


class VideoOutput(threading.Thread):
    """Encodes one stream's frames, in the order they are queued, then frees their slots."""

    def __init__(self, path: str, fps: float, width: int, height: int, codec: str,
                 ring: FrameRing, release: Callable[[Ticket], None]) -> None:
        super().__init__(name=f"write-{os.path.basename(path)}", daemon=True)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self.writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*codec), fps, (width, height))
        if not self.writer.isOpened():
            raise OutputError(f"cannot write video {path} with codec {codec!r}")
        self.size = (width, height)
        self.ring = ring
        self.release = release
        self.queue: queue.SimpleQueue[Ticket | None] = queue.SimpleQueue()
        self.written = 0

    def put(self, ticket: Ticket) -> None:
        self.queue.put(ticket)

    def finish(self) -> None:
        self.queue.put(None)

    def run(self) -> None:
        try:
            while (ticket := self.queue.get()) is not None:
                image = self.ring.frame_buffer(ticket.handle.slot, ticket.width, ticket.height)
                if (ticket.width, ticket.height) != self.size:
                    image = cv2.resize(image, self.size)
                self.writer.write(image)
                self.written += 1
                self.release(ticket)
        finally:
            self.writer.release()


class ResultSink:
    """Publishes each result on the PUB socket (topic = stream id) and appends it to the JSONL file."""

    def __init__(self, ctx: zmq.Context, publish: str | None, path: str | None) -> None:
        self.pub: zmq.Socket | None = None
        self.file = None
        if publish:
            try:
                self.pub = parse_spec(publish).open(ctx)
            except EndpointError as exc:
                raise OutputError(f"results.publish: {exc}") from None
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.file = open(path, "wb")

    def emit(self, stream_id: str, result: FrameResult) -> None:
        line = encode_json(result)
        if self.pub is not None:
            self.pub.send_multipart([stream_id.encode(), line])
        if self.file is not None:
            self.file.write(line + b"\n")

    def flush(self) -> None:
        """Called a few times a second so readers tailing the JSONL file see results promptly."""
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.pub is not None:
            self.pub.close()
