"""`pipeless-orch top`: a live terminal dashboard of a running pipeline's metrics topic.

Subscribes to the [metrics] publish socket (topic "metrics", one JSON
MetricsSnapshot per interval, docs/metrics.md) and redraws with rich: streams,
stages, processes, ring slots and filter errors. `--once` prints the first
snapshot and exits, for scripts and tests.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime

import msgspec
import zmq
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pipeless.orchestrator.metrics import METRICS_TOPIC, MetricsSnapshot, decode_snapshot

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5556"
BAR_WIDTH = 30


class NoMetrics(Exception):
    """Nothing arrived on the metrics socket in time (one line for the user)."""


def connectable(endpoint: str) -> str:
    """A bind address from a config ('tcp://*:5556', 'tcp://0.0.0.0:5556') as one we can connect to."""
    if "://" not in endpoint:
        endpoint = "tcp://" + endpoint
    scheme, _, rest = endpoint.partition("://")
    host, sep, port = rest.rpartition(":")
    if scheme == "tcp" and sep and host in ("*", "0.0.0.0"):
        return f"tcp://127.0.0.1:{port}"
    return endpoint


class Subscriber:
    """SUB socket on the metrics topic; `next()` returns the newest snapshot that has arrived."""

    def __init__(self, endpoint: str, ctx: zmq.Context | None = None) -> None:
        self.endpoint = connectable(endpoint)
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, METRICS_TOPIC)
        try:
            self.sock.connect(self.endpoint)
        except zmq.ZMQError as exc:
            self.sock.close()
            raise NoMetrics(f"cannot connect to {self.endpoint}: {exc}") from None

    def next(self, timeout_s: float) -> MetricsSnapshot | None:
        """Wait up to `timeout_s` for a snapshot; drain the queue and return the newest (None: nothing came)."""
        latest = None
        if not self.sock.poll(int(timeout_s * 1000)):
            return None
        while True:
            try:
                parts = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return latest
            if len(parts) == 2 and parts[0] == METRICS_TOPIC:
                try:
                    latest = decode_snapshot(parts[1])
                except (msgspec.ValidationError, msgspec.DecodeError):
                    continue  # another version of pipeless: skip rather than crash the dashboard

    def close(self) -> None:
        self.sock.close(linger=0)


# -- rendering -------------------------------------------------------------------------

def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def _uptime(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def slot_bar(used: int, total: int, width: int = BAR_WIDTH) -> Text:
    """`slots 12/16 ██████████████████████░░░░░░░░ 75%`, coloured by how full the ring is."""
    share = used / total if total else 0.0
    filled = round(share * width)
    colour = "green" if share < 0.75 else "yellow" if share < 1.0 else "red"
    bar = Text("slots ", style="bold")
    bar.append(f"{used}/{total} ")
    bar.append("█" * filled, style=colour)
    bar.append("░" * (width - filled), style="dim")
    bar.append(f" {share * 100:.0f}%")
    return bar


def render(snap: MetricsSnapshot, source: str = "", stale_s: float = 0.0) -> Group:
    """The whole dashboard for one snapshot, as a rich renderable."""
    head = Text("pipeless top", style="bold")
    if source:
        head.append(f"  {source}", style="dim")
    head.append(f"  up {_uptime(snap.uptime_s)}")
    head.append(f"  at {datetime.fromtimestamp(snap.time).strftime('%H:%M:%S')}", style="dim")
    if stale_s >= 1.0:
        head.append(f"  no update for {stale_s:.0f} s", style="bold red")

    streams = Table(title="streams", title_justify="left", box=box.SIMPLE_HEAD, expand=False)
    for name, justify in (("stream", "left"), ("fps", "right"), ("frames", "right"), ("dropped", "right"),
                          ("p50 ms", "right"), ("p99 ms", "right"), ("source", "left"),
                          ("reconnects", "right")):
        streams.add_column(name, justify=justify, no_wrap=True)
    for s in snap.streams:
        streams.add_row(s.id, f"{s.fps:.1f}", str(s.frames),
                        Text(str(s.dropped), style="yellow" if s.dropped else ""),
                        _ms(s.latency_p50_ms), _ms(s.latency_p99_ms),
                        Text("connected", style="green") if s.connected else Text("lost", style="bold red"),
                        str(s.reconnects))
    if not snap.streams:
        streams.add_row(Text("no streams", style="dim"), *[""] * 7)

    stages = Table(title="stages", title_justify="left", box=box.SIMPLE_HEAD)
    for name, justify in (("stage", "left"), ("frames", "right"), ("p50 ms", "right"), ("p99 ms", "right")):
        stages.add_column(name, justify=justify, no_wrap=True)
    for st in snap.stages:
        stages.add_row(st.name, str(st.frames), _ms(st.p50_ms), _ms(st.p99_ms))

    procs = Table(title="processes", title_justify="left", box=box.SIMPLE_HEAD)
    for name, justify in (("process", "left"), ("pid", "right"), ("CPU %", "right"), ("RSS MiB", "right"),
                          ("threads", "right"), ("fds", "right"), ("restarts", "right")):
        procs.add_column(name, justify=justify, no_wrap=True)
    for p in snap.processes:
        procs.add_row(p.name, str(p.pid), f"{p.cpu_percent:.1f}", _mib(p.rss_bytes), str(p.threads),
                      str(p.open_files), Text(str(p.restarts), style="bold red" if p.restarts else ""))

    parts = [head, streams, stages, procs, slot_bar(snap.slots_in_use, snap.slots_total)]
    if snap.filter_errors:
        errors = Table(title="filter errors", title_justify="left", box=box.SIMPLE_HEAD)
        errors.add_column("filter/kind", no_wrap=True)
        errors.add_column("count", justify="right", no_wrap=True)
        for key, n in sorted(snap.filter_errors.items()):
            errors.add_row(key, Text(str(n), style="red"))
        parts.append(errors)
    return Group(*parts)


# -- the command -----------------------------------------------------------------------

def wait_first(sub: Subscriber, timeout_s: float) -> MetricsSnapshot:
    snap = sub.next(timeout_s)
    if snap is None:
        raise NoMetrics(f"no metrics from {sub.endpoint} within {timeout_s:g} s: is [metrics] publish set?")
    return snap


def watch(sub: Subscriber, console: Console, timeout_s: float, refresh_s: float = 0.25) -> None:
    """Redraw on every snapshot until Ctrl-C; say so in the header when updates stop."""
    snap = wait_first(sub, timeout_s)
    got_at = time.monotonic()
    with Live(render(snap, sub.endpoint), console=console, auto_refresh=False, transient=False) as live:
        while True:
            fresh = sub.next(refresh_s)
            if fresh is not None:
                snap, got_at = fresh, time.monotonic()
            live.update(render(snap, sub.endpoint, time.monotonic() - got_at), refresh=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipeless-orch top", description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", default=DEFAULT_ENDPOINT,
                        help=f"the pipeline's [metrics] publish endpoint (default {DEFAULT_ENDPOINT})")
    parser.add_argument("--once", action="store_true", help="print the first snapshot and exit")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="S",
                        help="give up when no snapshot arrives within S seconds (default 5)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    sub = None
    try:
        sub = Subscriber(args.metrics)
        if args.once:
            console.print(render(wait_first(sub, args.timeout), sub.endpoint))
        else:
            watch(sub, console, args.timeout)
        return 0
    except NoMetrics as exc:
        print(f"pipeless: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        if sub is not None:
            sub.close()


if __name__ == "__main__":
    sys.exit(main())
