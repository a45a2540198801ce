"""The control API on a running pipeline: streams added and removed live, errors, metrics that move."""

from __future__ import annotations

import time

import pytest

from pipeless.orchestrator.config import load, ring_slots
from tests.conftest import SAMPLE
from tests.live import LivePipeline, free_port, http, live_config, looping, read_jsonl, scrape, wait_for


@pytest.fixture
def live(tmp_path):
    port = free_port()
    boxes = '[[filters]]\nname = "boxes"\nfunction = "pipeless.filters.python.draw_detections:draw_detections"\n'
    cfg = live_config(tmp_path, port, streams=looping("a"), sections=boxes + '[results]\nfile = "out/r.jsonl"\n')
    pipeline = LivePipeline(cfg, f"http://127.0.0.1:{port}")
    yield pipeline, tmp_path / "out" / "r.jsonl"
    pipeline.stop_cleanly()


def frames(results, stream):
    return [r["frame"] for r in results if r["stream"] == stream]


def test_add_and_remove_a_stream_while_running(live):
    pipeline, results_path = live
    url = pipeline.url
    wait_for(lambda: len(frames(read_jsonl(results_path), "a")) > 30, 30, "stream a results")
    status, body = http("POST", url + "/streams", {"id": "b", "input": str(SAMPLE), "restart": "on-eos"})
    assert status == 201 and body["id"] == "b"
    added_at = time.monotonic()
    wait_for(lambda: len(frames(read_jsonl(results_path), "b")) > 10, 10, "stream b results")
    assert time.monotonic() - added_at < 10
    ids = {s["id"] for s in http("GET", url + "/streams")[1]}
    assert ids == {"a", "b"}
    status, body = http("DELETE", url + "/streams/b")
    assert status == 200 and body["id"] == "b"
    wait_for(lambda: {s["id"] for s in http("GET", url + "/streams")[1]} == {"a"}, 10, "b to go")
    time.sleep(0.5)  # the JSONL file is flushed a few times a second
    count_b = len(frames(read_jsonl(results_path), "b"))
    count_a = len(frames(read_jsonl(results_path), "a"))
    wait_for(lambda: len(frames(read_jsonl(results_path), "a")) > count_a + 30, 30, "a to go on")
    results = read_jsonl(results_path)
    assert len(frames(results, "b")) == count_b  # removing b stopped its results
    assert frames(results, "b") == list(range(count_b))
    assert frames(results, "a") == list(range(len(frames(results, "a"))))  # a undisturbed, contiguous


def test_bad_requests_get_4xx_with_a_json_error(live):
    pipeline, _ = live
    url = pipeline.url
    cases = [
        ("POST", "/streams", {"id": "x"}, 400, "missing required field `input`"),
        ("POST", "/streams", {"id": "x", "input": "/no/such.mp4"}, 400, "no such file: /no/such.mp4"),
        ("POST", "/streams", {"id": "bad id", "input": str(SAMPLE)}, 400, "id: expected letters"),
        ("POST", "/streams", {"id": "a", "input": str(SAMPLE)}, 409, "already exists"),
        ("POST", "/streams", {"id": "r", "input": "rtsp://127.0.0.1:9/none"}, 422, "cannot open"),
        ("DELETE", "/streams/nope", None, 404, "no stream 'nope'"),
        ("GET", "/nowhere", None, 404, "no route"),
    ]
    for method, path, body, status, message in cases:
        got_status, got = http(method, url + path, body)
        assert got_status == status, (path, body, got)
        assert message in got["error"], got


def test_metrics_are_present_and_move(live):
    pipeline, results_path = live
    wait_for(lambda: len(read_jsonl(results_path)) > 10, 30, "results")
    first = scrape(pipeline.url)
    time.sleep(1.5)
    second = scrape(pipeline.url)
    out = 'pipeless_frames_total{stage="out",stream="a"}'
    assert second[out] > first[out] > 0
    assert second['pipeless_stage_seconds_count{stage="infer"}'] > first['pipeless_stage_seconds_count{stage="infer"}']
    assert second['pipeless_inference_batch_size_count'] > 0
    slots = ring_slots(load(pipeline.config))  # sized for 2 workers, batches of 8, one stream
    assert second["pipeless_slots_total"] == slots == 2 * 2 + 3 * 8 + 2
    assert 0 <= second["pipeless_slots_in_use"] <= slots
    assert second['pipeless_stream_fps{stream="a"}'] > 0
    for name in ("orchestrator", "worker 0", "worker 1", "inference"):
        assert second[f'pipeless_process_rss_bytes{{process="{name}"}}'] > 1e6
        assert f'pipeless_process_cpu_percent{{process="{name}"}}' in second
    assert 'pipeless_stream_reconnects_total{stream="a"}' in second
    # families that are declared even before anything happened to them
    text = __import__("urllib.request").request.urlopen(pipeline.url + "/metrics").read().decode()
    for family in ("pipeless_frames_dropped_total", "pipeless_filter_errors_total",
                   "pipeless_process_restarts_total"):
        assert f"# TYPE {family} counter" in text
