"""Helpers for tests that drive a running pipeline over its control API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, timeout: float = 10) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def looping(stream_id: str = "cam") -> str:
    """A [[streams]] table: the sample clip, restarted at its end, so the pipeline stays up."""
    from tests.conftest import SAMPLE

    return f'[[streams]]\nid = "{stream_id}"\ninput = "{SAMPLE}"\nrestart = "on-eos"\n'


def live_config(folder: Path, control_port: int, *, workers: int = 2, streams: str | None = None,
                sections: str = "", control: str = "") -> Path:
    """The tests' usual live pipeline, written to folder/p.toml: `streams` (default: the clip looping as
    `cam`), BlazeFace, any further `sections` ([[filters]], [results], [metrics] ...), and the control API
    on `control_port` (plus `control` lines, a token say)."""
    from tests.conftest import MODELS

    path = folder / "p.toml"
    path.write_text(f"""
[pipeline]
workers = {workers}
{streams or looping()}
[inference]
model = "{MODELS / 'blazeface-front-128.onnx'}"
adapter = "blazeface"
{sections}
[control]
http = "127.0.0.1:{control_port}"
{control}
""")
    return path


class LivePipeline:
    """`pipeless-orch -c …` in a subprocess, with its control API at `self.url`."""

    def __init__(self, config: Path, url: str, token: str | None = None) -> None:
        self.url = url
        self.config = config
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeless.orchestrator.cli", "-c", str(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        health = url + "/health" + (f"?token={token}" if token else "")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"pipeline exited: {self.proc.stderr.read()}")
            try:
                if http("GET", health, timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError("control API did not come up")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.stderr.read()

    def stop_cleanly(self) -> str:
        """Stop it as a user's Ctrl-C/SIGTERM would, and check it left as it should: exit code 130, no
        traceback, no process, segment or socket folder behind."""
        from tests.conftest import leftovers

        stderr = self.stop()
        assert self.proc.returncode == 130, stderr
        assert "Traceback" not in stderr
        assert leftovers(self.proc.pid) == []
        return stderr


def wait_for(predicate, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def read_jsonl(path: Path) -> list[dict]:
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            if line.endswith("\n"):
                out.append(json.loads(line))
    return out


def scrape(url: str) -> dict[str, float]:
    """Parse a Prometheus text page into {'name{labels}': value}."""
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out
