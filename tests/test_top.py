"""`pipeless-orch top` against a real running pipeline: rendered with rich's recording console, and
run as a user runs it, under a pseudo-terminal (once, and live until Ctrl-C)."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import zmq
from rich.console import Console

from pipeless.orchestrator import top
from pipeless.orchestrator.metrics import METRICS_TOPIC, MetricsSnapshot, decode_snapshot
from pipeless.orchestrator.config import load, ring_slots
from tests.conftest import ROOT, TEST_FILTERS
from tests.live import LivePipeline, free_port, live_config, wait_for

PROCESSES = ("orchestrator", "inference", "worker 0", "worker 1")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """One looping stream `cam` with a filter that always fails, metrics every 0.5 s, control API on."""
    mport, cport = free_port(), free_port()
    sections = f"""[[filters]]
name = "broken"
function = "{TEST_FILTERS / 'testing_filters.py'}:always_fails"
[[filters]]
name = "boxes"
function = "pipeless.filters.python.draw_detections:draw_detections"
[metrics]
publish = "tcp://127.0.0.1:{mport}"
interval_s = 0.5
"""
    pipeline = LivePipeline(live_config(tmp_path_factory.mktemp("top"), cport, sections=sections),
                            f"http://127.0.0.1:{cport}")
    pipeline.metrics = f"tcp://127.0.0.1:{mport}"
    yield pipeline
    pipeline.stop_cleanly()


class Collector:
    """The test's own subscriber: every snapshot published while it is connected."""

    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.SUBSCRIBE, METRICS_TOPIC)
        self.sock.connect(endpoint)
        self.snaps: list[MetricsSnapshot] = []

    def drain(self, wait_s: float = 0.0) -> list[MetricsSnapshot]:
        if wait_s and not self.sock.poll(int(wait_s * 1000)):
            return self.snaps
        while True:
            try:
                topic, body = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return self.snaps
            assert topic == METRICS_TOPIC
            self.snaps.append(decode_snapshot(body))

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


def settled(collector: Collector, timeout: float = 30) -> MetricsSnapshot:
    """A snapshot of a pipeline in full swing: frames out, every process sampled, a filter error counted."""

    def ready():
        snaps = collector.drain(0.6)
        s = snaps[-1] if snaps else None
        if (s and s.streams and s.streams[0].frames > 50 and s.streams[0].fps > 0 and s.filter_errors
                and {p.name for p in s.processes} == set(PROCESSES) and s.stages
                and all(st.p50_ms is not None for st in s.stages)
                and any(p.cpu_percent > 0 for p in s.processes)):
            return s
        return None

    return wait_for(ready, timeout, "a snapshot with frames, processes and filter errors", poll=0)


def row_patterns(snap: MetricsSnapshot) -> dict[str, re.Pattern]:
    """The rows `top` must show for this snapshot, as regexes over its text (numbers exactly as formatted)."""
    fmt = lambda v: "–" if v is None else f"{v:.1f}"  # noqa: E731
    rows = {}
    for s in snap.streams:
        rows[f"stream {s.id}"] = re.compile(
            rf"{re.escape(s.id)}\s+{s.fps:.1f}\s+{s.frames}\s+{s.dropped}\s+{fmt(s.latency_p50_ms)}\s+"
            rf"{fmt(s.latency_p99_ms)}\s+{'connected' if s.connected else 'lost'}\s+{s.reconnects}\b")
    for st in snap.stages:
        rows[f"stage {st.name}"] = re.compile(
            rf"{re.escape(st.name)}\s+{st.frames}\s+{fmt(st.p50_ms)}\s+{fmt(st.p99_ms)}\b")
    for p in snap.processes:
        rows[f"process {p.name}"] = re.compile(
            rf"{re.escape(p.name)}\s+{p.pid}\s+{p.cpu_percent:.1f}\s+{p.rss_bytes / 2**20:.1f}\s+{p.threads}\s+"
            rf"{p.open_files}\s+{p.restarts}\b")
    rows["slots"] = re.compile(rf"slots {snap.slots_in_use}/{snap.slots_total} [█░]{{{top.BAR_WIDTH}}} "
                               rf"{100 * snap.slots_in_use / snap.slots_total:.0f}%")
    for key, n in snap.filter_errors.items():
        rows[f"filter error {key}"] = re.compile(rf"{re.escape(key)}\s+{n}\b")
    return rows


def test_render_a_real_snapshot_with_a_recording_console(live):
    collector = Collector(live.metrics)
    try:
        snap = settled(collector)
    finally:
        collector.close()
    # the snapshot is the real run's, not a stand-in
    assert [s.id for s in snap.streams] == ["cam"]
    assert [st.name for st in snap.stages] == ["pre.0", "infer", "post.0"]
    pids = {p.name: p.pid for p in snap.processes}
    assert pids["orchestrator"] == live.proc.pid
    assert len(set(pids.values())) == 4 and all(p.rss_bytes > 10 * 2**20 for p in snap.processes)
    assert snap.filter_errors["broken/error"] >= snap.streams[0].frames > 50
    assert snap.slots_total == ring_slots(load(live.config)) == 2 * 2 + 3 * 8 + 2

    console = Console(record=True, file=io.StringIO(), width=120)
    console.print(top.render(snap, live.metrics))
    text = console.export_text()
    assert f"pipeless top  {live.metrics}" in text
    for what, pattern in row_patterns(snap).items():
        assert pattern.search(text), f"{what} not shown as {pattern.pattern!r} in:\n{text}"
    for title in ("streams", "stages", "processes", "filter errors"):
        assert re.search(rf"^{title}\s*$", text, re.M), title


def test_render_before_any_result_and_when_stale():
    raw = (b'{"time":1795736199.8,"uptime_s":0.5,"streams":[{"id":"door","fps":0,"frames":0,"dropped":3,'
           b'"latency_p50_ms":null,"latency_p99_ms":null,"connected":false,"reconnects":2}],"stages":[],'
           b'"processes":[],"slots_in_use":0,"slots_total":8,"filter_errors":{}}')
    snap = decode_snapshot(raw)
    console = Console(record=True, file=io.StringIO(), width=120)
    console.print(top.render(snap, "tcp://x:1", stale_s=7.2))
    text = console.export_text()
    assert re.search(r"door\s+0\.0\s+0\s+3\s+–\s+–\s+lost\s+2", text), text
    assert "no update for 7 s" in text
    assert "slots 0/8 " + "░" * top.BAR_WIDTH + " 0%" in text
    assert "filter errors" not in text


# -- under a pseudo-terminal, as a user runs it ----------------------------------------------

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]")


def command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("pipeless-orch")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "pipeless.orchestrator.cli", *args]


def in_pty(argv: list[str], ctrl_c_when=None, timeout: float = 20,
           cols: int = 120, rows: int = 50) -> tuple[int, bytes]:
    """Run argv with a pty as its controlling terminal; type Ctrl-C once `ctrl_c_when(output so far)` holds."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES", "TERM")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
                            start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    out = bytearray()
    started = time.monotonic()
    typed = False
    try:
        while time.monotonic() - started < timeout:
            if ctrl_c_when is not None and not typed and ctrl_c_when(bytes(out)):
                os.write(master, b"\x03")  # the terminal turns it into SIGINT for the foreground group
                typed = True
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the slave side has closed it
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None and not select.select([master], [], [], 0.2)[0]:
                break
        rc = proc.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return rc, bytes(out)


def plain(raw: bytes) -> str:
    return ANSI.sub("", raw.decode(errors="replace")).replace("\r", "")


def shown_snapshot(text: str, snaps: list[MetricsSnapshot]) -> list[MetricsSnapshot]:
    """The collected snapshots whose every row appears in `text`."""
    return [s for s in snaps if all(p.search(text) for p in row_patterns(s).values())]


def test_top_once_in_a_terminal(live):
    collector = Collector(live.metrics)
    try:
        settled(collector)
        rc, raw = in_pty(command("top", "--metrics", live.metrics, "--once"))
        time.sleep(0.6)
        snaps = collector.drain(0.6)
    finally:
        collector.close()
    text = plain(raw)
    assert rc == 0, text
    assert b"\x1b[" in raw  # rich saw a terminal: colours and styles
    assert "Traceback" not in text and "pipeless: error" not in text
    assert text.count("pipeless top") == 1
    assert re.search(r"^\s*cam\s", text, re.M)
    for name in PROCESSES:
        assert re.search(rf"^\s*{name}\s+\d+\s", text, re.M), name
    assert re.search(rf"orchestrator\s+{live.proc.pid}\s", text)
    # every number on screen is one real snapshot's, the one top received first
    matches = shown_snapshot(text, snaps)
    assert matches, f"no published snapshot matches what top showed:\n{text}"
    assert matches[0].streams[0].frames > 50


def shown_frames(text: str) -> list[int]:
    return [int(m.group(1)) for m in re.finditer(r"cam\s+[\d.]+\s+(\d+)\s", text)]


def test_top_live_redraws_until_ctrl_c(live):
    collector = Collector(live.metrics)
    try:
        settled(collector)
        started = time.monotonic()
        rc, raw = in_pty(command("top", "--metrics", live.metrics),
                         ctrl_c_when=lambda out: len(set(shown_frames(plain(out)))) >= 3, timeout=25)
        snaps = collector.drain(0.6)
    finally:
        collector.close()
    text = plain(raw)
    assert rc == 0, text  # Ctrl-C is how one leaves top: not an error
    assert time.monotonic() - started < 20, "top never showed three snapshots"
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    assert b"\x1b[?25l" in raw and b"\x1b[?25h" in raw  # Live hid the cursor and gave it back
    frames = shown_frames(text)
    assert len(set(frames)) >= 3, frames  # redrawn with each new snapshot's numbers
    assert frames == sorted(frames)
    assert set(frames) <= {s.streams[0].frames for s in snaps}


def test_top_says_so_when_no_metrics_arrive():
    port = free_port()
    started = time.monotonic()
    proc = subprocess.run(command("top", "--metrics", f"tcp://127.0.0.1:{port}", "--once"),
                          capture_output=True, text=True, timeout=30)
    waited = time.monotonic() - started
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (f"pipeless: error: no metrics from tcp://127.0.0.1:{port} within 5 s: "
                           f"is [metrics] publish set?\n")
    assert 5 <= waited < 15


def test_the_ops_example_matches_the_commands_defaults():
    from pipeless.orchestrator import streams_cli
    from pipeless.orchestrator.config import load

    cfg = load(ROOT / "configs" / "ops.toml")
    assert cfg.metrics.publish == top.DEFAULT_ENDPOINT  # `pipeless-orch top` needs no flag
    assert f"http://{cfg.control.http}" == streams_cli.DEFAULT_CONTROL  # nor `pipeless-orch streams`
    assert cfg.streams[0].restart_policy == "on-eos"
