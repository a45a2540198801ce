"""What the router measures as frames pass: per-stage times, end-to-end latency, counts.

Kept in the orchestrator's memory as bounded samples and counters; the
benchmark reads it after a run and the metrics exporter reads it live.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict, deque

import numpy as np

SAMPLES = 20000
STREAM_SAMPLES = 2000  # per stream: enough for its p99, bounded for pipelines of many cameras
STAGE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Histogram:
    """Cumulative-bucket histogram in the Prometheus shape: counts per upper bound, sum, count."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # last: +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        out, total = [], 0
        for bound, n in zip([*map(str, self.bounds), "+Inf"], self.counts):
            total += n
            out.append((bound, total))
        return out


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stage_seconds: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=SAMPLES))
        self.latency_seconds: deque[float] = deque(maxlen=SAMPLES)  # decode done -> result out
        self.stream_latency: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=STREAM_SAMPLES))
        self.frames: dict[tuple[str, str], int] = defaultdict(int)  # (stream, stage) -> count
        self.dropped: dict[tuple[str, str], int] = defaultdict(int)  # (stream, reason) -> count
        self.filter_errors: dict[tuple[str, str], int] = defaultdict(int)  # (filter, kind) -> count
        self.batch_sizes: deque[int] = deque(maxlen=SAMPLES)
        self.batch_streams: dict[int, set[str]] = {}  # batch id -> streams it mixed (bounded)
        self.stage_hist: dict[str, Histogram] = defaultdict(lambda: Histogram(STAGE_BUCKETS))
        self.batch_hist = Histogram(BATCH_BUCKETS)

    def stage(self, stream: str, stage: str, seconds: float) -> None:
        with self.lock:
            self.stage_seconds[stage].append(seconds)
            self.stage_hist[stage].observe(seconds)
            self.frames[(stream, stage)] += 1

    def done(self, stream: str, latency: float) -> None:
        with self.lock:
            self.latency_seconds.append(latency)
            self.stream_latency[stream].append(latency)
            self.frames[(stream, "out")] += 1

    def drop(self, stream: str, reason: str, count: int = 1) -> None:
        with self.lock:
            self.dropped[(stream, reason)] += count

    def failure(self, filter_name: str, kind: str) -> None:
        with self.lock:
            self.filter_errors[(filter_name, kind)] += 1

    def batch(self, batch_id: int, size: int, stream: str) -> None:
        """Called once per frame of a batch; the size is counted once per batch."""
        with self.lock:
            streams = self.batch_streams.get(batch_id)
            if streams is None:
                self.batch_sizes.append(size)
                self.batch_hist.observe(size)
                if len(self.batch_streams) >= SAMPLES:
                    self.batch_streams.pop(next(iter(self.batch_streams)))
                streams = self.batch_streams[batch_id] = set()
            streams.add(stream)

    @staticmethod
    def percentiles(values, qs=(50, 99)) -> dict[str, float]:
        if not values:
            return {f"p{q}": float("nan") for q in qs}
        arr = np.fromiter(values, dtype=float)
        return {f"p{q}": float(np.percentile(arr, q)) for q in qs}
