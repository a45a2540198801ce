"""Whole runs of `pipeless-orch` on the shipped clip: order, crashes, failures, shutdown, leftovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from pipeless.orchestrator.config import load, usable_cores
from pipeless.orchestrator.run import run_pipeline
from pipeless.orchestrator.stats import Stats
from tests.conftest import SAMPLE, TEST_FILTERS, leftovers, run_cli, shm_segments, video_frames
from tests.filters.testing_filters import read_index

FILTERS = TEST_FILTERS / "testing_filters.py"


def read_results(path) -> list[dict]:
    return [json.loads(line) for line in open(path)]


def read_video_indices(path) -> list[int]:
    return [read_index(img) for img in video_frames(path)]


def config(tmp_path, filters: str, workers: int = 2, slots: int = 8, inputs=(SAMPLE,)) -> str:
    streams = "".join(
        f'[[streams]]\nid = "s{i}"\ninput = "{src}"\noutput = "out/s{i}.mp4"\n' for i, src in enumerate(inputs)
    )
    text = f"[pipeline]\nworkers = {workers}\nslots = {slots}\n{streams}{filters}\n[results]\nfile = 'out/r.jsonl'\n"
    path = tmp_path / "p.toml"
    path.write_text(text)
    return str(path)


def stamp(jitter_ms: int = 0, name: str = "stamp") -> str:
    return f"""
[[filters]]
name = "{name}"
function = "{FILTERS}:stamp_index"
config = {{ jitter_ms = {jitter_ms} }}
"""


def test_out_of_order_completion_leaves_in_order(tmp_path):
    proc = run_cli("-c", config(tmp_path, stamp(jitter_ms=4), workers=3))
    assert proc.returncode == 0, proc.stderr
    results = read_results(tmp_path / "out/r.jsonl")
    assert [r["frame"] for r in results] == list(range(120))
    assert len({r["data"]["stamp"]["pid"] for r in results}) == 3  # every worker took frames
    assert read_video_indices(tmp_path / "out/s0.mp4") == list(range(120))
    assert not leftovers(proc.pid)


def test_two_streams_each_complete_and_ordered(tmp_path):
    proc = run_cli("-c", config(tmp_path, stamp(jitter_ms=2), inputs=(SAMPLE, SAMPLE)))
    assert proc.returncode == 0, proc.stderr
    results = read_results(tmp_path / "out/r.jsonl")
    for sid in ("s0", "s1"):
        assert [r["frame"] for r in results if r["stream"] == sid] == list(range(120))
        assert read_video_indices(tmp_path / f"out/{sid}.mp4") == list(range(120))


def test_worker_crash_loses_no_frame(tmp_path):
    marker = tmp_path / "crashed"
    filters = stamp() + f"""
[[filters]]
name = "crash"
function = "{FILTERS}:crash_once"
config = {{ marker = "{marker}", at = 40 }}
"""
    proc = run_cli("-c", config(tmp_path, filters))
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()
    assert "died" in proc.stderr and "restarting" in proc.stderr
    results = read_results(tmp_path / "out/r.jsonl")
    assert [r["frame"] for r in results] == list(range(120))
    assert read_video_indices(tmp_path / "out/s0.mp4") == list(range(120))


def test_a_poison_frame_skips_its_stage_is_reported_and_counted(tmp_path):
    """A frame that kills every worker it reaches (no model: filters run in post.0): after two deaths its
    stage is skipped, the frame
    frame still comes out (with a `crash` error), every other frame is processed, and the failure counts."""
    filters = stamp() + f"""
[[filters]]
name = "poison"
function = "{FILTERS}:crash_always"
config = {{ at = 30 }}
"""
    stats = Stats()
    summary = run_pipeline(load(config(tmp_path, filters, slots=16)), threading.Event(), stats)
    assert summary.completed
    results = read_results(tmp_path / "out/r.jsonl")
    assert [r["frame"] for r in results] == list(range(120))
    poisoned = results[30]
    assert [(e["filter"], e["kind"]) for e in poisoned["errors"]] == [("post.0", "crash")]
    assert "died 2 times on this frame" in poisoned["errors"][0]["message"]
    assert all("errors" not in r and "stamp" in r["data"] for r in results if r["frame"] != 30)
    assert dict(stats.filter_errors) == {("post.0", "crash"): 1}


def test_a_failing_filter_is_reported_per_frame_and_the_run_goes_on(tmp_path):
    filters = f"""
[[filters]]
name = "broken"
function = "{FILTERS}:always_fails"
""" + stamp()
    proc = run_cli("-c", config(tmp_path, filters))
    assert proc.returncode == 0, proc.stderr
    results = read_results(tmp_path / "out/r.jsonl")
    assert len(results) == 120
    for r in results:
        assert r["errors"] == [{"filter": "broken", "kind": "error",
                                "message": f"RuntimeError: no luck on frame {r['frame']}"}]
        assert "stamp" in r["data"]


def test_workers_share_the_cores_and_a_small_ring_is_warned_about(tmp_path):
    """Each worker's OpenCV pool gets cores // workers threads (not the whole machine each), and a
    pipeline.slots below what the workers keep in flight runs, with one warning that says so."""
    filters = f'[[filters]]\nname = "threads"\nfunction = "{FILTERS}:opencv_threads"\n'
    proc = run_cli("-c", config(tmp_path, filters, workers=2, slots=4))
    assert proc.returncode == 0, proc.stderr
    assert "pipeline.slots = 4 holds fewer frames than the workers and batches keep in flight (9)" in proc.stderr
    results = read_results(tmp_path / "out/r.jsonl")
    assert [r["frame"] for r in results] == list(range(120))
    assert {r["data"]["threads"]["threads"] for r in results} == {max(1, usable_cores() // 2)}
    assert len({r["data"]["threads"]["pid"] for r in results}) == 2  # both workers reported


def test_unloadable_filter_is_one_line(tmp_path):
    filters = '[[filters]]\nname = "nope"\nfunction = "no.such.module:fn"\n'
    proc = run_cli("-c", config(tmp_path, filters, slots=16))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "pipeless: error: filter 'nope': cannot import 'no.such.module': No module named 'no'"
    ]


def _start(cfg: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeless.orchestrator.cli", "-c", cfg],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _children_when_running(proc: subprocess.Popen, count: int, timeout: float = 30) -> list[psutil.Process]:
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = parent.children(recursive=True)
        if len(kids) >= count:
            return kids
        time.sleep(0.05)
    raise AssertionError("children did not start")


def _slow_config(tmp_path) -> str:
    return config(tmp_path, stamp() + f'[[filters]]\nname = "slow"\nfunction = "{FILTERS}:slow"\nconfig = {{ ms = 60 }}\n')


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_with_nothing_left(tmp_path, sig):
    proc = _start(_slow_config(tmp_path))
    kids = _children_when_running(proc, 2)
    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=10)
    assert time.monotonic() - sent < 3.0
    assert proc.returncode == 130, proc.stderr.read()
    assert "Traceback" not in proc.stderr.read()
    time.sleep(0.2)
    assert not [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]
    assert not leftovers(proc.pid)
    results = read_results(tmp_path / "out/r.jsonl")
    assert [r["frame"] for r in results] == list(range(len(results)))  # what came out is whole and ordered
    assert read_video_indices(tmp_path / "out/s0.mp4") == list(range(len(results)))


def test_sigkill_leaves_no_orphans_and_next_run_reclaims(tmp_path):
    proc = _start(_slow_config(tmp_path))
    kids = _children_when_running(proc, 2)
    time.sleep(1.0)
    left = shm_segments()
    proc.kill()
    proc.wait(timeout=5)
    gone, alive = psutil.wait_procs(kids, timeout=5)
    assert not alive, "children outlived a killed orchestrator"
    stale = {n for n in left if n.startswith(f"pipeless-{proc.pid}-")}
    assert stale and stale <= shm_segments()
    rerun = run_cli("-c", config(tmp_path, stamp()))
    assert rerun.returncode == 0, rerun.stderr
    assert "reclaimed shared memory" in rerun.stderr
    assert not (stale & shm_segments())


def test_stateful_filter_sees_each_stream_in_order_with_several_workers(tmp_path):
    filters = stamp(jitter_ms=4) + f"""
[[filters]]
name = "order"
stateful = true
function = "{FILTERS}:order_checker"
""" + stamp(jitter_ms=3, name="after")
    proc = run_cli("-c", config(tmp_path, filters, workers=3, inputs=(SAMPLE, SAMPLE)))
    assert proc.returncode == 0, proc.stderr
    results = read_results(tmp_path / "out/r.jsonl")
    for sid in ("s0", "s1"):
        mine = [r for r in results if r["stream"] == sid]
        assert [r["frame"] for r in mine] == list(range(120))
        assert all("errors" not in r for r in mine)
        assert [r["data"]["order"]["previous"] for r in mine] == list(range(-1, 119))
    assert len({r["data"]["order"]["pid"] for r in results}) == 1  # one instance holds the state
    assert len({r["data"]["stamp"]["pid"] for r in results}) == 3  # stateless stages still spread
