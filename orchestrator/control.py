"""The HTTP side of a running pipeline: /health, /metrics, /streams and live previews.

Plain stdlib ThreadingHTTPServer: one thread per request, so a preview held
open for hours does not block a scrape. Requests and replies are msgspec
Structs; a bad request gets a 4xx with a JSON error naming what is wrong.
Bound to loopback by default; beyond it a token is required (config or
PIPELESS_TOKEN), given as `Authorization: Bearer …` or `?token=…`.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlsplit

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeless.orchestrator.config import StreamConfig, check_stream
from pipeless.orchestrator.metrics import FpsMeter, ProcessSampler, prometheus_registry
from pipeless.orchestrator.preview import PreviewHub
from pipeless.orchestrator.router import PipelineError
from pipeless.orchestrator.sources import SourceError

if TYPE_CHECKING:
    from pipeless.orchestrator.run import Pipeline

log = logging.getLogger("pipeless")


class StreamRequest(msgspec.Struct, forbid_unknown_fields=True):
    """POST /streams body."""

    id: str
    input: str
    output: str | None = None
    restart: Literal["never", "always", "on-error", "on-eos"] | None = None


class StreamStatus(msgspec.Struct):
    id: str
    input: str
    live: bool
    connected: bool
    frames: int
    dropped: int
    reconnects: int
    width: int
    height: int


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


_PREVIEW = re.compile(r"^/streams/([A-Za-z0-9_.-]+)/preview\.mjpg$")
_STREAM = re.compile(r"^/streams/([A-Za-z0-9_.-]+)$")
_BOUNDARY = "pipelessframe"


def _status(s) -> StreamStatus:
    dec = s.decoder
    return StreamStatus(s.id, s.source, s.info.live, bool(dec and dec.connected), s.published, s.dropped,
                        dec.reconnects if dec else 0, s.info.width, s.info.height)


class ControlServer:
    def __init__(self, pipeline: "Pipeline", address: str, token: str | None,
                 sampler: ProcessSampler, fps: FpsMeter) -> None:
        self.pipeline = pipeline
        self.token = token or os.environ.get("PIPELESS_TOKEN") or None
        self.preview = PreviewHub()
        self.registry = prometheus_registry(pipeline, sampler, fps)
        host, _, port = address.rpartition(":")
        server = self

        class Handler(_Handler):
            control = server

        try:
            self.httpd = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
        except OSError as exc:
            raise PipelineError(f"control.http: cannot listen on {address}: {exc.strerror}") from None
        self.httpd.daemon_threads = True
        self.closing = False
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="control-http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self.preview.start()
        self.pipeline.on_result = self._on_result
        self._thread.start()
        log.info("pipeless: control API on %s (/health /metrics /streams)", self.address)

    def _on_result(self, stream, ticket) -> None:
        if self.preview.wants(stream.id):
            ring = self.pipeline.ring
            self.preview.offer(stream.id, ring.frame_buffer(ticket.handle.slot, ticket.width, ticket.height))

    def stop(self) -> None:
        self.closing = True
        self.preview.stop()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- the API, called from request threads --------------------------------------
    def streams(self) -> list[StreamStatus]:
        return [_status(s) for s in self.pipeline.live_streams()]

    def add(self, body: bytes) -> StreamStatus:
        try:
            req = msgspec.json.decode(body, type=StreamRequest)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"invalid stream: {exc}") from None
        cfg = StreamConfig(id=req.id, input=req.input, output=req.output, restart=req.restart)
        problem = check_stream(cfg, self.pipeline.cfg.base_dir)
        if problem:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"{problem[0]}: {problem[1]}")
        try:
            state = self.pipeline.add_stream(cfg)
        except ValueError as exc:
            raise ApiError(HTTPStatus.CONFLICT, str(exc)) from None
        except SourceError as exc:
            raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, f"input: {exc}") from None
        log.info("pipeless: stream %s added (%s)", cfg.id, cfg.input)
        return _status(state)

    def remove(self, stream_id: str) -> StreamStatus:
        try:
            state = self.pipeline.remove_stream(stream_id)
        except KeyError:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no stream {stream_id!r}") from None
        log.info("pipeless: stream %s removed", stream_id)
        return _status(state)

    def authorised(self, headers, query: dict[str, list[str]]) -> bool:
        if not self.token:
            return True
        given = headers.get("Authorization", "").removeprefix("Bearer ").strip() or \
            (query.get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), self.token.encode())


class _Handler(BaseHTTPRequestHandler):
    control: ControlServer
    protocol_version = "HTTP/1.1"
    server_version = "pipeless"

    def log_message(self, fmt: str, *args: Any) -> None:  # access logs would drown the pipeline's own
        log.debug("control: " + fmt, *args)

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):  # the client hung up mid-reply: nobody to tell
            self.close_connection = True

    def _send(self, status: HTTPStatus, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, value: Any) -> None:
        self._send(status, msgspec.json.encode(value))

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"error": message})

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        try:
            if not self.control.authorised(self.headers, query):
                raise ApiError(HTTPStatus.UNAUTHORIZED, "missing or wrong token")
            path = url.path.rstrip("/") or "/"
            if method == "GET" and path == "/health":
                self._json(HTTPStatus.OK, {"status": "ok", "streams": len(self.control.pipeline.live_streams())})
            elif method == "GET" and path == "/metrics":
                self._send(HTTPStatus.OK, generate_latest(self.control.registry), CONTENT_TYPE_LATEST)
            elif method == "GET" and path == "/streams":
                self._json(HTTPStatus.OK, self.control.streams())
            elif method == "POST" and path == "/streams":
                length = int(self.headers.get("Content-Length") or 0)
                self._json(HTTPStatus.CREATED, self.control.add(self.rfile.read(length)))
            elif method == "DELETE" and (match := _STREAM.match(path)):
                self._json(HTTPStatus.OK, self.control.remove(match.group(1)))
            elif method == "GET" and (match := _PREVIEW.match(path)):
                self._mjpeg(match.group(1))
            elif method == "GET" and path == "/":
                self._send(HTTPStatus.OK, self._index().encode(), "text/html; charset=utf-8")
            else:
                raise ApiError(HTTPStatus.NOT_FOUND, f"no route {method} {url.path}")
        except ApiError as exc:
            self._error(exc.status, str(exc))
        except Exception as exc:  # never a traceback to the client or the terminal
            log.warning("pipeless: control %s %s failed: %s", method, url.path, exc)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _mjpeg(self, stream_id: str) -> None:
        if not any(s.id == stream_id for s in self.control.pipeline.live_streams()):
            raise ApiError(HTTPStatus.NOT_FOUND, f"no stream {stream_id!r}")
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for jpeg in self.control.preview.frames(stream_id, lambda: not self.control.closing):
                self.wfile.write(f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                 f"Content-Length: {len(jpeg)}\r\n\r\n".encode())
                self.wfile.write(jpeg)
                self.wfile.write(b"\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _index(self) -> str:
        rows = "".join(
            f"<figure><img src='/streams/{s.id}/preview.mjpg' alt='{s.id}'><figcaption>{s.id}: {s.frames} frames"
            f"</figcaption></figure>" for s in self.control.streams())
        return (f"<!doctype html><title>pipeless</title><h1>pipeless</h1>{rows or '<p>no streams</p>'}"
                f"<p><a href='/metrics'>metrics</a> · <a href='/streams'>streams</a></p>")
