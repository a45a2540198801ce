"""The benchmark suite, on a tiny configuration: every figure is there and every ratio comes from the same run.

No timing is asserted: the machine running the tests may be slow or busy.
What is checked is the bookkeeping: that each row carries every figure the
issue asks for, that each ratio is exactly the row's frames/s over its own
group's baseline measured in this run, and that the targets are read off
those very rows.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from pipeless.bench.measure import steady_fps
from pipeless.bench.work import toml_text
from tests.conftest import ROOT, shm_segments

WORKLOADS = ("passthrough-720p", "demo-carphone", "infer-centerface-b4")
STAGES = {"decode", "pre", "infer", "post", "output", "dispatch"}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "bench.json"
    args = [sys.executable, "-m", "pipeless.bench", "--tiny", "--workdir", str(tmp / "work"), "--json", str(out)]
    for name in WORKLOADS:
        args += ["--only", name]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    return json.loads(out.read_text()), stdout, proc.pid


def _num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_every_workload_ran_and_the_table_shows_it(bench):
    report, table, _ = bench
    names = [g["name"] for g in report["workloads"]]
    assert names == ["passthrough-720p", "demo-carphone", "infer-centerface@128x96-b4"]
    for name in names:
        assert f"== {name}:" in table
    assert "targets:" in table
    m = report["machine"]
    assert m["logical_cpus"] >= 1 and m["ram_gib"] > 0 and m["cpu"] and m["onnxruntime"]
    assert report["schema"] == "pipeless-bench/1" and report["mode"] == "tiny"


def test_every_row_has_every_figure(bench):
    report, _, _ = bench
    systems = set()
    for g in report["workloads"]:
        for row in g["rows"]:
            systems.add(row["system"])
            where = f"{g['name']}/{row['label']}"
            assert _num(row["fps"]) and row["fps"] > 0, where
            assert row["frames"] > 1, where
            assert row["processes"], where
            for p in row["processes"]:
                assert p["role"] and p["pid"] > 0, where
                assert _num(p["peak_rss_mb"]) and p["peak_rss_mb"] > 0, where
                assert _num(p["cpu_percent"]), where
            assert "others_cpu_percent" in row
            if row["system"] in ("naive-loop", "naive-mp", "pipeless"):
                assert set(row["stages_ms"]) == STAGES, where
                assert _num(row["stages_ms"]["decode"]) and _num(row["stages_ms"]["dispatch"]), where
                assert _num(row["latency_ms"]["p50"]) and _num(row["latency_ms"]["p99"]), where
                assert row["latency_ms"]["p99"] >= row["latency_ms"]["p50"], where
                b = row["bytes_per_frame"]
                assert b["decode"] == g["clip"]["width"] * g["clip"]["height"] * 3, where
                assert b["total"] >= b["decode"], where
            if row["system"] == "pipeless":
                b = row["bytes_per_frame"]
                assert b["pickled"] == 0 and _num(b["messages"]) and b["messages"] < 4096, where
                assert b["verified"]["decoded_in_place"] is True, where
                assert b["verified"]["filters_saw_shared_memory"] in (True, None), where
                if row["batch"] is not None:  # a model ran: provider and batch sizes are recorded
                    assert row["provider"].endswith("ExecutionProvider"), where
                    assert 1 <= row["batch_sizes"]["max"] <= row["batch"], where
                else:
                    assert _num(row["overhead_ms"]["p50"]) and _num(row["overhead_ms"]["p99"]), where
            if row["system"] == "naive-mp":
                frame = g["clip"]["width"] * g["clip"]["height"] * 3
                assert row["bytes_per_frame"]["pickled"] >= 2 * frame, where  # the frame goes out and back
    assert {"decode", "naive-loop", "naive-mp", "pipeless", "onnxruntime"} <= systems


def test_ratios_come_from_the_same_run(bench):
    report, _, _ = bench
    run_id = report["run_id"]
    for g in report["workloads"]:
        assert all(_num(r["fps"]) for r in g["rows"]), [(r["label"], r["fps"]) for r in g["rows"]]
        baselines = [r for r in g["rows"] if r["baseline"]]
        assert len(baselines) == 1, g["name"]
        base = baselines[0]
        assert base["key"] == g["baseline"] and base["fps"] == g["baseline_fps"] and base["ratio"] == 1.0
        for row in g["rows"]:
            assert row["run_id"] == run_id
            assert row["ratio"] == round(row["fps"] / base["fps"], 3), (g["name"], row["label"])


def test_targets_are_read_off_this_runs_rows(bench):
    report, _, _ = bench
    targets = {t["id"]: t for t in report["targets"]}
    groups = {g["name"]: g for g in report["workloads"]}
    t = targets["passthrough-vs-decode"]
    free = [r for r in groups["passthrough-720p"]["rows"] if r["system"] == "pipeless" and not r.get("paced_fps")]
    assert t["measured"] == max(r["ratio"] for r in free)
    assert t["met"] == (t["measured"] >= 0.85)
    t = targets["framework-overhead"]
    paced = [r for r in groups["passthrough-720p"]["rows"] if r.get("paced_fps")]
    assert len(paced) == 2 and any(r["paced_fps"] == 30.0 for r in paced)
    assert t["measured"] == {r["label"]: {"p50_ms": r["overhead_ms"]["p50"], "p99_ms": r["overhead_ms"]["p99"]}
                             for r in paced}
    t = targets["batched-vs-onnxruntime"]
    for name, ratio in t["measured"].items():
        row = next(r for r in groups[name]["rows"] if r["system"] == "pipeless")
        assert ratio == row["ratio"]
    for t in targets.values():
        assert t["met"] in (True, False)


def test_no_shared_memory_left_behind(bench):
    _, _, pid = bench  # the bench process is the orchestrator of every pipeless run: segments carry its pid
    assert not [name for name in shm_segments() if name.startswith(f"pipeless-{pid}-")]


def test_steady_fps_skips_start_up_and_the_first_burst():
    # a first batch of 4 out at t=10, then one frame every 0.1 s: 10 frames/s, whatever came before
    done = [10.0] * 4 + [10.0 + 0.1 * i for i in range(1, 11)]
    fps, span = steady_fps(done)
    assert span == pytest.approx(1.0) and fps == pytest.approx(10.0)
    assert steady_fps([1.0]) == (None, None)


def test_generated_pipeline_toml_round_trips(tmp_path):
    import msgspec

    doc = {"pipeline": {"workers": 2}, "streams": [{"id": "a", "input": "x \"y\".mp4"}],
           "filters": [{"name": "f", "config": {"d": 7, "sigma": 50.0, "on": True, "xs": [1, 2]}}]}
    assert msgspec.toml.decode(toml_text(doc).encode()) == doc


def test_cpu_time_is_read_at_the_rows_edges():
    """A row's CPU% uses CPU time interpolated at its start and end, not the nearest whole samples
    (which took in a process's start-up just before a sub-second row)."""
    from pipeless.bench.measure import _cpu_at

    # (time, cumulative CPU seconds, rss): busy at 2 cores from 1.0 s to 1.1 s, idle before and after
    samples = [(0.9, 0.5, 0), (1.0, 0.5, 0), (1.1, 0.7, 0), (1.2, 0.7, 0)]
    assert _cpu_at(samples, 1.05) == pytest.approx(0.6)
    assert _cpu_at(samples, 1.15) == pytest.approx(0.7)
    assert _cpu_at(samples, 0.0) == 0.5 and _cpu_at(samples, 9.0) == 0.7  # outside: the nearest sample
    window = (1.0, 1.1)
    assert 100 * (_cpu_at(samples, window[1]) - _cpu_at(samples, window[0])) / 0.1 == pytest.approx(200.0)
