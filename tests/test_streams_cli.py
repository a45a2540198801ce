"""`pipeless-orch streams list|add|remove` round trip against a running pipeline whose control API wants a token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import SAMPLE
from tests.live import LivePipeline, free_port, http, live_config, wait_for

TOKEN = "s3cret-t0ken"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("streams")
    port = free_port()
    cfg = live_config(tmp, port, workers=1, control=f'token = "{TOKEN}"')
    pipeline = LivePipeline(cfg, f"http://127.0.0.1:{port}", token=TOKEN)
    pipeline.tmp = tmp
    yield pipeline
    pipeline.stop_cleanly()


def streams(*args: str, token: str | None = TOKEN, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PIPELESS_TOKEN"}
    if token:
        env["PIPELESS_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "pipeless.orchestrator.cli", "streams", *args],
                          capture_output=True, text=True, timeout=60, env=env, cwd=cwd)


def table_rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip() and "──" not in line]


def api_streams(live) -> dict[str, dict]:
    return {s["id"]: s for s in http("GET", f"{live.url}/streams?token={TOKEN}")[1]}


def test_list_add_remove_round_trip(live):
    ctl = ("--control", live.url)
    listed = streams("list", *ctl)
    assert listed.returncode == 0, listed.stderr
    header, *rows = table_rows(listed.stdout)
    assert header == ["id", "kind", "state", "size", "frames", "dropped", "reconnects", "input"]
    assert len(rows) == 1 and rows[0][:4] == ["cam", "file", "connected", "176x144"]
    assert rows[0][-1] == str(SAMPLE) and int(rows[0][4]) >= 0

    as_json = streams("list", "--json", *ctl)
    assert [s["id"] for s in json.loads(as_json.stdout)] == ["cam"]

    # relative paths are the caller's: run from the test's folder
    rel_input = os.path.relpath(SAMPLE, live.tmp)
    added = streams("add", *ctl, "--id", "b", "--input", rel_input, "--output", "out/b.mp4", "--restart", "on-eos",
                    cwd=live.tmp)
    assert added.returncode == 0, added.stderr
    assert added.stdout == f"added b: {SAMPLE} (file, 176x144)\n"
    wait_for(lambda: api_streams(live).get("b", {}).get("frames", 0) > 130, 20, "b past one loop of the clip")
    assert api_streams(live)["b"]["reconnects"] >= 1  # restart = on-eos was passed on

    ids = [row[0] for row in table_rows(streams("list", *ctl).stdout)[1:]]
    assert ids == ["cam", "b"]

    again = streams("add", *ctl, "--id", "b", "--input", str(SAMPLE))
    assert (again.returncode, again.stdout) == (2, "")
    assert again.stderr == "pipeless: error: stream 'b' already exists (HTTP 409)\n"

    removed = streams("remove", "b", *ctl)
    assert removed.returncode == 0, removed.stderr
    n = int(removed.stdout.split()[3])
    assert removed.stdout == f"removed b after {n} frames (0 dropped)\n" and n > 130
    wait_for(lambda: set(api_streams(live)) == {"cam"}, 10, "b to go")  # it winds down after the reply
    wait_for(lambda: (live.tmp / "out" / "b.mp4").stat().st_size > 10_000 if (live.tmp / "out" / "b.mp4").exists()
             else False, 10, "b's video in the caller's folder")

    gone = streams("remove", "--id", "b", *ctl)
    assert (gone.returncode, gone.stderr) == (2, "pipeless: error: no stream 'b' (HTTP 404)\n")


def test_refusals_are_one_line_with_exit_2(live):
    ctl = ("--control", live.url)
    cases = [
        (("add", *ctl, "--id", "x", "--input", "/no/such.mp4"), TOKEN,
         "pipeless: error: input: no such file: /no/such.mp4 (HTTP 400)"),
        (("add", *ctl, "--id", "bad id", "--input", str(SAMPLE)), TOKEN,
         "pipeless: error: id: expected letters, digits, '_', '-' or '.', got 'bad id' (HTTP 400)"),
        (("list", *ctl), None, "pipeless: error: missing or wrong token (HTTP 401)"),
        (("list", *ctl, "--token", "wrong"), None, "pipeless: error: missing or wrong token (HTTP 401)"),
        (("list", "--control", f"http://127.0.0.1:{free_port()}"), TOKEN,
         "pipeless: error: cannot reach the control API at http://127.0.0.1:{port}: Connection refused "
         "(is [control] http set?)"),
    ]
    for args, token, message in cases:
        started = time.monotonic()
        proc = streams(*args, token=token)
        if "{port}" in message:
            message = message.format(port=args[-1].rsplit(":", 1)[1])
        assert (proc.returncode, proc.stdout) == (2, ""), (args, proc.stdout, proc.stderr)
        assert proc.stderr == message + "\n", args
        assert time.monotonic() - started < 10
    # --token on the command line works without the environment
    ok = streams("list", *ctl, "--token", TOKEN, token=None)
    assert ok.returncode == 0 and "cam" in ok.stdout
