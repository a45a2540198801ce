"""Config errors are one line naming the file, the key and what was expected."""

from __future__ import annotations

import pytest

from pipeless.orchestrator.config import ConfigError, frames_in_flight, load, ring_slots
from pipeless.orchestrator.stages import plan_stages
from tests.conftest import SAMPLE, MODELS, run_cli

GOOD = f"""
[pipeline]
workers = 2
[[streams]]
id = "cam"
input = "{SAMPLE}"
output = "out/cam.mp4"
[inference]
model = "{MODELS / 'blazeface-front-128.onnx'}"
adapter = "blazeface"
[results]
file = "out/results.jsonl"
"""


def test_good_config_resolves_paths_relative_to_the_file(write_config, tmp_path):
    cfg = load(write_config(GOOD))
    assert cfg.pipeline.workers == 2 and cfg.pipeline.slots == 0
    assert cfg.streams[0].output == str(tmp_path / "out" / "cam.mp4")
    assert cfg.results.file == str(tmp_path / "out" / "results.jsonl")
    assert cfg.inference.batch_size == 8


@pytest.mark.parametrize(
    "edit, key, expected",
    [
        (("workers = 2", 'workers = "two"'), "pipeline.workers", "Expected `int`, got `str`"),
        (("workers = 2", "wrokers = 2"), "pipeline", "unknown field `wrokers`"),
        (("workers = 2", "workers = -1"), "pipeline.workers", "expected 0"),
        (("workers = 2", "workers = 2\nslots = 1"), "pipeline.slots", "expected 0 (sized automatically) or at least 2"),
        (("workers = 2", "workers = 2\nslots = -4"), "pipeline.slots", "expected 0 (sized automatically) or at least 2"),
        (('adapter = "blazeface"', 'adapter = "ssd"'), "inference.adapter", "expected one of: blazeface, centerface, raw, yolo"),
        (('id = "cam"', 'id = "my cam"'), "streams[0].id", "expected letters"),
        ((str(SAMPLE), "/nope/missing.mp4"), "streams[0].input", "no such file: /nope/missing.mp4"),
        ((str(MODELS / "blazeface-front-128.onnx"), "nomodel.onnx"), "inference.model", "no such file"),
        (("[results]", "[results]\npublish = 'localhost'"), "results.publish", "ZeroMQ endpoint"),
    ],
)
def test_bad_values_name_file_and_key(write_config, edit, key, expected):
    path = write_config(GOOD.replace(*edit))
    with pytest.raises(ConfigError) as err:
        load(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {key}:"), msg
    assert expected in msg, msg


def test_not_toml(write_config):
    path = write_config("[pipeline\nworkers = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(path)


def test_cli_prints_one_line_and_no_traceback(write_config):
    path = write_config(GOOD.replace("workers = 2", "workers = 'x'"))
    proc = run_cli("-c", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pipeline.workers" in lines[0]


def test_stateful_filters_split_the_plan(write_config):
    cfg = load(write_config(GOOD + """
[[filters]]
name = "pre"
stage = "pre"
function = "x:y"
[[filters]]
name = "tracker"
stateful = true
function = "x:y"
[[filters]]
name = "draw"
function = "x:y"
"""))
    plan = [(s.name, s.filters, s.stateful, s.prepares_input) for s in plan_stages(cfg)]
    assert plan == [
        ("pre.0", ("pre",), False, True),
        ("infer", (), False, False),
        ("post.0", ("tracker",), True, False),
        ("post.1", ("draw",), False, False),
    ]


def test_ring_holds_what_workers_and_batches_keep_in_flight(write_config):
    cfg = load(write_config(GOOD))  # 2 workers, batches of 8 (the default), one stream
    assert cfg.inference.batch_size == 8
    assert frames_in_flight(cfg) == 2 * 2 + 3 * 8 + 2 * 1
    assert ring_slots(cfg) == 30
    tiny = load(write_config(GOOD.replace("workers = 2", "workers = 1").replace('adapter = "blazeface"',
                                                                               'adapter = "blazeface"\nbatch_size = 1')))
    assert ring_slots(tiny) == 16  # never fewer than 16
    fixed = load(write_config(GOOD.replace("workers = 2", "workers = 2\nslots = 6")))
    assert ring_slots(fixed) == 6  # an explicit size is kept (a warning at start says it caps throughput)
