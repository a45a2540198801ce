"""A real Prometheus server scrapes a running pipeline's /metrics every second; its query API must see every
pipeless metric, with the labels docs/metrics.md promises, and the counters must move.

The pipeline runs two streams: `cam`, the shipped clip as a looping file, and `door`, the same clip served
over HTTP, which pipeless treats as a live source: decoded as fast as the network gives it, it outruns the
pipeline and has frames dropped (reason ring_full). A filter fails on every frame, and the test kills a
worker with SIGKILL so that the restart counter moves.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import zmq

from pipeless.orchestrator.metrics import METRICS_TOPIC, decode_snapshot
from pipeless.orchestrator.stats import BATCH_BUCKETS, STAGE_BUCKETS
from tests.conftest import MODELS, ROOT, SAMPLE, TEST_FILTERS, leftovers
from tests.live import free_port, http, wait_for

PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None)
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus binary (Debian: apt install prometheus)")

STAGES = ("pre.0", "infer", "post.0", "out")
PROCESSES = ("orchestrator", "inference", "worker 0", "worker 1")


class RangeFileHandler(BaseHTTPRequestHandler):
    """Serves one file with Range support (FFmpeg seeks to the MP4's trailing moov atom)."""

    data = b""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        data = self.data
        match = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        start, end = 0, len(data) - 1
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)), end) if match.group(2) else end
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        try:
            self.wfile.write(data[start:end + 1])
        except (BrokenPipeError, ConnectionResetError):
            pass


def stop_process(proc: subprocess.Popen, sig=signal.SIGTERM, wait: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}),
                                    timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]["result"]

    def series(self, expr: str) -> dict[tuple, list[float]]:
        """A range selector's samples, keyed by each series' labels (without __name__, job, instance)."""
        out = {}
        for r in self.query(expr):
            labels = tuple(sorted((k, v) for k, v in r["metric"].items() if k not in ("job", "instance", "pipeline")))
            if "values" in r:
                out[labels] = [float(v) for _, v in r["values"]]
            else:
                out[labels] = [float(r["value"][1])]
        return out

    def scalar(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])


@pytest.fixture
def scraped(tmp_path):
    """(Prometheus, pipeline process, metrics endpoint): Prometheus already scraping the running pipeline."""
    RangeFileHandler.data = SAMPLE.read_bytes()
    video = ThreadingHTTPServer(("127.0.0.1", 0), RangeFileHandler)
    video.daemon_threads = True
    threading.Thread(target=video.serve_forever, daemon=True).start()
    control, metrics, prom_port = free_port(), free_port(), free_port()
    cfg = tmp_path / "p.toml"
    cfg.write_text(f"""
[pipeline]
workers = 2
[[streams]]
id = "cam"
input = "{SAMPLE}"
restart = "on-eos"
[[streams]]
id = "door"
input = "http://127.0.0.1:{video.server_address[1]}/carphone.mp4"
restart = "always"
[inference]
model = "{MODELS / 'blazeface-front-128.onnx'}"
adapter = "blazeface"
[[filters]]
name = "broken"
function = "{TEST_FILTERS / 'testing_filters.py'}:always_fails"
[metrics]
publish = "tcp://127.0.0.1:{metrics}"
interval_s = 0.5
[control]
http = "127.0.0.1:{control}"
""")
    # the shipped example, pointed at this pipeline and scraping every second
    example = (ROOT / "configs" / "prometheus.yml").read_text()
    prom_cfg = example.replace('targets: ["127.0.0.1:9090"]', f'targets: ["127.0.0.1:{control}"]')
    prom_cfg = prom_cfg.replace("interval: 5s", "interval: 1s")
    assert f'targets: ["127.0.0.1:{control}"]' in prom_cfg and prom_cfg.count("interval: 1s") == 2
    (tmp_path / "prometheus.yml").write_text(prom_cfg)
    # the looping HTTP stream logs every reconnect: stderr to a file, never a pipe that could fill
    pipeline_log = open(tmp_path / "pipeline.log", "w")
    prom_log = open(tmp_path / "prometheus.log", "w")
    pipeline = prom = None
    try:
        pipeline = subprocess.Popen([sys.executable, "-m", "pipeless.orchestrator.cli", "-c", str(cfg)],
                                    stdout=pipeline_log, stderr=subprocess.STDOUT)
        prom = subprocess.Popen([PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                                 f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
                                stdout=prom_log, stderr=subprocess.STDOUT)

        def up(proc, url, log):
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args[0]} exited: {(tmp_path / log).read_text()[-2000:]}")
            try:
                return http("GET", url, timeout=1)[0] == 200
            except OSError:
                return False

        wait_for(lambda: up(pipeline, f"http://127.0.0.1:{control}/health", "pipeline.log"), 60, "the pipeline")
        wait_for(lambda: up(prom, f"http://127.0.0.1:{prom_port}/-/ready", "prometheus.log"), 30, "prometheus")
        yield Prometheus(f"http://127.0.0.1:{prom_port}"), pipeline, f"tcp://127.0.0.1:{metrics}"
    finally:
        if prom is not None:
            stop_process(prom, wait=10)  # always: a leftover Prometheus would hold its port and folder
        if pipeline is not None:
            stop_process(pipeline)
        video.shutdown()
        video.server_close()
        pipeline_log.close()
        prom_log.close()
    assert prom.returncode is not None
    log = (tmp_path / "pipeline.log").read_text()
    assert pipeline.returncode == 130, log[-3000:]
    assert "Traceback" not in log
    # The HTTP clip ends and starts again: an end, said once, not an outage at every loop.
    assert log.count("stream door reached its end") == 1 and "door lost its source" not in log, log[-3000:]
    assert leftovers(pipeline.pid) == []


def pid_of(endpoint: str, name: str) -> int:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, METRICS_TOPIC)
    sock.connect(endpoint)
    try:
        assert sock.poll(10_000), "no metrics snapshot"
        snap = decode_snapshot(sock.recv_multipart()[1])
        return next(p.pid for p in snap.processes if p.name == name)
    finally:
        sock.close(linger=0)
        ctx.term()


def increasing(samples: list[float]) -> bool:
    return len(samples) >= 2 and samples[-1] > samples[0] and samples == sorted(samples)


def test_prometheus_scrapes_every_metric_and_the_counters_move(scraped):
    prom, pipeline, metrics_endpoint = scraped
    # a few scrapes of the pipeline in full swing, with the drops and filter errors under way
    wait_for(lambda: prom.query('up{job="pipeless",pipeline="ops"} == 1'), 15, "the first successful scrape")
    wait_for(lambda: prom.query('count_over_time(pipeless_frames_dropped_total{stream="door"}[30s]) >= 3'),
             20, "three scrapes with drops")
    restarts_before = prom.series("pipeless_process_restarts_total")
    assert {dict(k)["process"] for k in restarts_before} == set(PROCESSES)
    assert all(v == [0.0] for v in restarts_before.values())
    victim = pid_of(metrics_endpoint, "worker 1")
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: prom.query('pipeless_process_restarts_total{process="worker 1"} == 1'), 15,
             "Prometheus to see worker 1's restart")
    wait_for(lambda: prom.query('count_over_time(pipeless_frames_total{stream="door",stage="out"}[30s]) >= 5'),
             10, "five scrapes")
    window = "[30s]"

    # frames per stream and stage, counting up
    frames = prom.series(f"pipeless_frames_total{window}")
    for stream in ("cam", "door"):
        for stage in STAGES:
            key = (("__name__", "pipeless_frames_total"), ("stage", stage), ("stream", stream))
            assert key in frames, (key, list(frames))
            assert increasing(frames[key]), (key, frames[key])

    # drops: the live stream outran the pipeline; the file stream never drops
    dropped = prom.series(f"pipeless_frames_dropped_total{window}")
    ring_full = dropped[(("__name__", "pipeless_frames_dropped_total"), ("reason", "ring_full"), ("stream", "door"))]
    assert increasing(ring_full), ring_full
    assert not any(dict(k)["stream"] == "cam" for k in dropped)

    # per-stage time histograms: every bucket, cumulative, +Inf = count, and a sensible median
    for stage in ("pre.0", "infer", "post.0"):
        buckets = {r["metric"]["le"]: float(r["value"][1])
                   for r in prom.query(f'pipeless_stage_seconds_bucket{{stage="{stage}"}}')}
        assert "+Inf" in buckets and {float(le) for le in buckets if le != "+Inf"} == set(STAGE_BUCKETS), buckets
        ordered = [buckets[k] for k in sorted(buckets, key=lambda le: math.inf if le == "+Inf" else float(le))]
        assert ordered == sorted(ordered) and ordered[-1] > 0
        count = prom.scalar(f'pipeless_stage_seconds_count{{stage="{stage}"}}')
        assert buckets["+Inf"] == count
        assert prom.scalar(f'pipeless_stage_seconds_sum{{stage="{stage}"}}') > 0
        assert increasing(next(iter(prom.series(f'pipeless_stage_seconds_count{{stage="{stage}"}}{window}')
                                    .values())))
    infer_p50 = prom.scalar('histogram_quantile(0.5, rate(pipeless_stage_seconds_bucket{stage="infer"}[10s]))')
    assert 0.0005 < infer_p50 < 5

    # inference batch sizes: frames of both streams gathered per run (batch_size 8)
    batch = {r["metric"]["le"]: float(r["value"][1]) for r in prom.query("pipeless_inference_batch_size_bucket")}
    assert {float(le) for le in batch if le != "+Inf"} == {float(b) for b in BATCH_BUCKETS}
    assert batch["+Inf"] == prom.scalar("pipeless_inference_batch_size_count") > 0
    assert increasing(next(iter(prom.series(f"pipeless_inference_batch_size_count{window}").values())))
    mean_batch = prom.scalar("rate(pipeless_inference_batch_size_sum[10s])"
                             " / rate(pipeless_inference_batch_size_count[10s])")
    assert 1 <= mean_batch <= 8

    # the ring
    assert prom.scalar("pipeless_slots_total") == 2 * 2 + 3 * 8 + 2 * 2  # sized for 2 workers, batches of 8, 2 streams
    in_use = prom.series(f"pipeless_slots_in_use{window}")
    assert all(0 <= v <= 32 for samples in in_use.values() for v in samples)
    assert max(v for samples in in_use.values() for v in samples) > 0

    # streams
    fps = prom.series(f"pipeless_stream_fps{window}")
    for stream in ("cam", "door"):
        samples = fps[(("__name__", "pipeless_stream_fps"), ("stream", stream))]
        assert max(samples) > 1, (stream, samples)
    assert prom.query('pipeless_stream_connected{stream="cam"} == 1')
    assert increasing(next(iter(prom.series(f'pipeless_stream_reconnects_total{{stream="door"}}{window}').values())))

    # processes: CPU and memory of each, and the restart of the killed worker
    cpu = prom.series(f"pipeless_process_cpu_percent{window}")
    rss = prom.series("pipeless_process_rss_bytes")
    for name in PROCESSES:
        assert (("__name__", "pipeless_process_cpu_percent"), ("process", name)) in cpu
        assert rss[(("__name__", "pipeless_process_rss_bytes"), ("process", name))][0] > 10 * 2**20
    assert max(cpu[(("__name__", "pipeless_process_cpu_percent"), ("process", "inference"))]) > 5
    restarts = prom.series("pipeless_process_restarts_total")
    assert {dict(k)["process"]: v[0] for k, v in restarts.items()} == {
        "orchestrator": 0.0, "inference": 0.0, "worker 0": 0.0, "worker 1": 1.0}

    # filter errors: the filter that always fails, on every frame of both streams
    errors = prom.series(f'pipeless_filter_errors_total{{filter="broken",kind="error"}}{window}')
    assert len(errors) == 1
    samples = next(iter(errors.values()))
    assert increasing(samples)
    out_total = prom.scalar('sum(pipeless_frames_total{stage="out"})')
    assert samples[-1] <= out_total + 64  # one error per frame out (give or take frames in flight)
    assert pipeline.poll() is None
