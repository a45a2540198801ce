"""Metrics for dashboards: one snapshot model, published on ZeroMQ and exposed to Prometheus.

Both views read the same sources (the router's Stats, the ring's occupancy,
psutil on every process), so `pipeless-orch top` and Grafana never disagree.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Iterator

import msgspec
import psutil
import zmq
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from pipeless.orchestrator.stats import Stats
from pipeless.orchestrator.outputs import OutputError
from pipeless.protocol.endpoints import EndpointError, parse_spec

if TYPE_CHECKING:
    from pipeless.orchestrator.run import Pipeline

METRICS_TOPIC = b"metrics"


class StreamMetrics(msgspec.Struct):
    id: str
    fps: float
    frames: int
    dropped: int
    latency_p50_ms: float | None  # None: no result yet
    latency_p99_ms: float | None
    connected: bool
    reconnects: int


class StageMetrics(msgspec.Struct):
    name: str
    frames: int
    p50_ms: float | None  # None: no sample yet
    p99_ms: float | None


class ProcessMetrics(msgspec.Struct):
    name: str
    pid: int
    cpu_percent: float
    rss_bytes: int
    threads: int
    open_files: int
    restarts: int


class MetricsSnapshot(msgspec.Struct):
    time: float
    uptime_s: float
    streams: list[StreamMetrics]
    stages: list[StageMetrics]
    processes: list[ProcessMetrics]
    slots_in_use: int
    slots_total: int
    filter_errors: dict[str, int]


encode_snapshot = msgspec.json.Encoder().encode
decode_snapshot = msgspec.json.Decoder(MetricsSnapshot).decode


class ProcessSampler:
    """psutil views of the orchestrator and its children, kept across samples so CPU % is meaningful.

    Shared by the metrics topic and /metrics scrapes: a read within MIN_INTERVAL_S of the last
    one gets that one's numbers, since CPU % over a few milliseconds is noise (often 0).
    """

    MIN_INTERVAL_S = 0.5

    def __init__(self, pipeline: "Pipeline") -> None:
        self.pipeline = pipeline
        self._procs: dict[int, psutil.Process] = {}
        self._lock = threading.Lock()
        self._last: list[ProcessMetrics] = []
        self._last_at = float("-inf")

    def _named(self) -> list[tuple[str, int, int]]:
        named = [("orchestrator", psutil.Process().pid, 0)]
        sup = self.pipeline.sup
        if sup is not None:
            for child in list(sup.children.values()):
                if child.process.pid:
                    named.append((child.label, child.process.pid, sup.restarts.get(child.label, 0)))
        return named

    def sample(self) -> list[ProcessMetrics]:
        out = []
        with self._lock:
            now = time.monotonic()
            if now - self._last_at < self.MIN_INTERVAL_S:
                return list(self._last)
            alive = set()
            for name, pid, restarts in self._named():
                proc = self._procs.get(pid)
                try:
                    if proc is None:
                        proc = self._procs[pid] = psutil.Process(pid)
                        proc.cpu_percent(None)  # primes the counter; the next call measures
                    with proc.oneshot():
                        out.append(ProcessMetrics(name, pid, proc.cpu_percent(None), proc.memory_info().rss,
                                                  proc.num_threads(), proc.num_fds(), restarts))
                    alive.add(pid)
                except psutil.Error:
                    continue
            for pid in set(self._procs) - alive:
                del self._procs[pid]
            self._last, self._last_at = out, now
        return out


class FpsMeter:
    """Frames out per second per stream, over the time between two reads."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}
        self.fps: dict[str, float] = {}

    def update(self, counts: dict[str, int]) -> dict[str, float]:
        now = time.monotonic()
        for sid, n in counts.items():
            then, before = self._last.get(sid, (now, n))
            if now - then >= 0.5:
                self.fps[sid] = (n - before) / (now - then)
                self._last[sid] = (now, n)
            elif sid not in self._last:
                self._last[sid] = (now, n)
        return self.fps


def _ms(values) -> tuple[float | None, float | None]:
    if not values:  # JSON has no NaN: msgspec would write null, which a float field cannot decode
        return None, None
    p = Stats.percentiles(values)
    return round(p["p50"] * 1000, 3), round(p["p99"] * 1000, 3)


def snapshot(pipeline: "Pipeline", sampler: ProcessSampler, fps: FpsMeter) -> MetricsSnapshot:
    stats = pipeline.stats
    streams = list(pipeline.live_streams())
    with stats.lock:
        latency = {s.id: list(stats.stream_latency.get(s.id, ())) for s in streams}
        stage_samples = {k: list(v) for k, v in stats.stage_seconds.items()}
        stage_frames: dict[str, int] = {}
        for (stream, stage), n in stats.frames.items():
            stage_frames[stage] = stage_frames.get(stage, 0) + n
        errors = {f"{f}/{k}": n for (f, k), n in stats.filter_errors.items()}
    rates = fps.update({s.id: s.published for s in streams})
    stream_rows = []
    for s in streams:
        dec = s.decoder
        stream_rows.append(StreamMetrics(s.id, round(rates.get(s.id, 0.0), 2), s.published, s.dropped,
                                         *_ms(latency[s.id]), bool(dec and dec.connected),
                                         dec.reconnects if dec else 0))
    stage_rows = [StageMetrics(name, stage_frames.get(name, 0), *_ms(samples))
                  for name, samples in stage_samples.items()]
    ring = pipeline.allocator
    return MetricsSnapshot(time.time(), round(time.monotonic() - pipeline.started, 3), stream_rows, stage_rows,
                           sampler.sample(), ring.in_use if ring else 0,
                           ring.ring.layout.slots if ring else 0, errors)


class MetricsPublisher(threading.Thread):
    """Publishes a snapshot every interval on the [metrics] PUB socket, topic "metrics"."""

    def __init__(self, pipeline: "Pipeline", endpoint: str, interval_s: float, sampler: ProcessSampler,
                 fps: FpsMeter) -> None:
        super().__init__(name="metrics", daemon=True)
        self.pipeline = pipeline
        self.interval = interval_s
        self.sampler = sampler
        self.fps = fps
        self.halt = threading.Event()
        try:
            self.sock = parse_spec(endpoint).open(pipeline.ctx)
        except EndpointError as exc:
            raise OutputError(f"metrics.publish: {exc}") from None

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            try:
                snap = snapshot(self.pipeline, self.sampler, self.fps)
            except RuntimeError:  # a stream came or went mid-read: next tick
                continue
            self.sock.send_multipart([METRICS_TOPIC, encode_snapshot(snap)])

    def stop(self) -> None:
        self.halt.set()
        self.join(2.0)
        self.sock.close(linger=0)


class PrometheusCollector(Collector):
    """Renders the pipeline's state as Prometheus metrics at scrape time (docs/metrics.md)."""

    def __init__(self, pipeline: "Pipeline", sampler: ProcessSampler, fps: FpsMeter) -> None:
        self.pipeline = pipeline
        self.sampler = sampler
        self.fps = fps

    def collect(self) -> Iterator:
        p, stats = self.pipeline, self.pipeline.stats
        frames = CounterMetricFamily("pipeless_frames", "Frames that completed a stage (stage=out: results emitted)",
                                     labels=["stream", "stage"])
        dropped = CounterMetricFamily("pipeless_frames_dropped", "Frames dropped, by reason (ring_full: a live "
                                      "stream outran the pipeline; disconnected: sent while the source was lost)",
                                      labels=["stream", "reason"])
        errors = CounterMetricFamily("pipeless_filter_errors", "Filter failures on single frames",
                                     labels=["filter", "kind"])
        stage_hist = HistogramMetricFamily("pipeless_stage_seconds", "Time a frame spent in each stage, "
                                           "from dispatch to reply", labels=["stage"])
        with stats.lock:
            for (stream, stage), n in stats.frames.items():
                frames.add_metric([stream, stage], n)
            for (stream, reason), n in stats.dropped.items():
                dropped.add_metric([stream, reason], n)
            for (flt, kind), n in stats.filter_errors.items():
                errors.add_metric([flt, kind], n)
            for stage, hist in stats.stage_hist.items():
                stage_hist.add_metric([stage], hist.cumulative(), hist.sum)
            batch = HistogramMetricFamily("pipeless_inference_batch_size", "Frames per inference batch")
            batch.add_metric([], stats.batch_hist.cumulative(), stats.batch_hist.sum)
        yield from (frames, dropped, errors, stage_hist, batch)

        ring = p.allocator
        yield GaugeMetricFamily("pipeless_slots_in_use", "Ring slots holding a frame", ring.in_use if ring else 0)
        yield GaugeMetricFamily("pipeless_slots_total", "Ring slots", ring.ring.layout.slots if ring else 0)
        streams = list(p.live_streams())
        rates = self.fps.update({s.id: s.published for s in streams})
        fps = GaugeMetricFamily("pipeless_stream_fps", "Results per second", labels=["stream"])
        reconnects = CounterMetricFamily("pipeless_stream_reconnects", "Times a stream's source was reopened",
                                         labels=["stream"])
        connected = GaugeMetricFamily("pipeless_stream_connected", "1 while the source is open", labels=["stream"])
        for s in streams:
            fps.add_metric([s.id], rates.get(s.id, 0.0))
            reconnects.add_metric([s.id], s.decoder.reconnects if s.decoder else 0)
            connected.add_metric([s.id], 1.0 if s.decoder and s.decoder.connected else 0.0)
        yield from (fps, reconnects, connected)
        cpu = GaugeMetricFamily("pipeless_process_cpu_percent", "CPU % per process", labels=["process"])
        rss = GaugeMetricFamily("pipeless_process_rss_bytes", "Resident memory per process", labels=["process"])
        restarts = CounterMetricFamily("pipeless_process_restarts", "Times a child process was restarted",
                                       labels=["process"])
        for proc in self.sampler.sample():
            cpu.add_metric([proc.name], proc.cpu_percent)
            rss.add_metric([proc.name], proc.rss_bytes)
            restarts.add_metric([proc.name], proc.restarts)
        yield from (cpu, rss, restarts)


def prometheus_registry(pipeline: "Pipeline", sampler: ProcessSampler, fps: FpsMeter) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PrometheusCollector(pipeline, sampler, fps))
    return registry
