"""Hostile wasm filters inside a whole run: the run completes, every frame is present, the error is in
that frame's result, and no worker dies (the same worker pids serve the whole run)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, SAMPLE, TEST_FILTERS, leftovers, run_cli

HOSTILE = ROOT / "filters" / "c" / "hostile"
CASES = [("loop", "deadline"), ("alloc", "memory"), ("trap", "trap"), ("badcall", "host-call"),
         ("keepborrow", "trap")]


@pytest.mark.parametrize("guest,kind", CASES, ids=[c[0] for c in CASES])
def test_hostile_filter_in_a_run(tmp_path, guest, kind):
    cfg = tmp_path / "p.toml"
    cfg.write_text(f"""
[pipeline]
workers = 2
[[streams]]
id = "cam"
input = "{SAMPLE}"
output = "out/cam.mp4"
[[filters]]
name = "hostile"
kind = "wasm"
path = "{HOSTILE / (guest + '.wasm')}"
deadline_ms = 30
memory_mb = 8
[[filters]]
name = "stamp"
function = "{TEST_FILTERS / 'testing_filters.py'}:stamp_index"
[results]
file = "out/r.jsonl"
""")
    proc = run_cli("-c", str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert "died" not in proc.stderr and "Traceback" not in proc.stderr
    results = [json.loads(l) for l in open(tmp_path / "out" / "r.jsonl")]
    assert [r["frame"] for r in results] == list(range(120))
    for r in results:
        if r["frame"] % 2 == 0:  # the guests misbehave on even frames
            assert [(e["filter"], e["kind"]) for e in r["errors"]] == [("hostile", kind)], r
        else:
            assert "errors" not in r, r
        assert "stamp" in r["data"]  # the chain went on after the hostile filter
    assert len({r["data"]["stamp"]["pid"] for r in results}) == 2  # the two workers lived throughout
    assert not leftovers(proc.pid)
