"""Socket specs in config files: `[pattern+](bind|connect):address`, as Savant writes them.

A plain address (`tcp://127.0.0.1:5555`) means the default pattern, bound.
`pub+connect:tcp://aggregator:5555` lets many pipelines feed one collector
that binds; `push+bind:ipc:///run/results.sock` gives load-balanced delivery
to a pool of consumers instead of fan-out.
"""

from __future__ import annotations

import re

import msgspec
import zmq

_SPEC = re.compile(r"^(?:(?P<pattern>[a-z]+)\+)?(?:(?P<mode>bind|connect):)?(?P<address>[a-z]+://.+)$")
_PATTERNS = {"pub": zmq.PUB, "push": zmq.PUSH}


class EndpointError(ValueError):
    pass


class SocketSpec(msgspec.Struct, frozen=True):
    pattern: str
    mode: str
    address: str

    def open(self, ctx: zmq.Context, connect_wait_s: float = 2.0) -> zmq.Socket:
        """Bind or connect. A connecting socket waits (briefly) for its peer, because PUB drops
        whatever it sends before the connection is up and a short run could lose everything."""
        sock = ctx.socket(_PATTERNS[self.pattern])
        sock.setsockopt(zmq.LINGER, 500)
        try:
            if self.mode == "bind":
                sock.bind(self.address)
            else:
                monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
                sock.connect(self.address)
                try:
                    if monitor.poll(int(connect_wait_s * 1000)):
                        monitor.recv_multipart()
                finally:
                    sock.disable_monitor()
                    monitor.close(linger=0)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise EndpointError(f"cannot {self.mode} {self.address}: {exc}") from None
        return sock


def parse_spec(text: str, default_pattern: str = "pub") -> SocketSpec:
    match = _SPEC.match(text.strip())
    if not match:
        raise EndpointError(f"expected '[pub|push+][bind|connect:]tcp://host:port' (or ipc://), got {text!r}")
    pattern = match.group("pattern") or default_pattern
    if pattern not in _PATTERNS:
        raise EndpointError(f"unknown socket pattern {pattern!r}; expected one of {', '.join(_PATTERNS)}")
    return SocketSpec(pattern, match.group("mode") or "bind", match.group("address"))
