"""What the router's Stats keep, and how a metrics snapshot reads them."""

from __future__ import annotations

import time
from types import SimpleNamespace

from pipeless.orchestrator.metrics import FpsMeter, snapshot
from pipeless.orchestrator.stats import STREAM_SAMPLES, Stats


def _stream(stream_id: str, published: int) -> SimpleNamespace:
    return SimpleNamespace(id=stream_id, published=published, dropped=0, decoder=None)


def test_each_stream_reports_its_own_latency() -> None:
    """A lagging camera must stand out in `top` and the snapshot, not be averaged with the others."""
    stats = Stats()
    for i in range(300):
        stats.done("door", 0.010 + (i % 10) * 0.001)  # 10-19 ms
        stats.done("yard", 0.200)
    streams = [_stream("door", 300), _stream("yard", 300), _stream("new", 0)]
    pipeline = SimpleNamespace(stats=stats, started=time.monotonic(), allocator=None, live_streams=lambda: streams)
    snap = snapshot(pipeline, SimpleNamespace(sample=lambda: []), FpsMeter())
    by_id = {s.id: s for s in snap.streams}
    assert 10.0 <= by_id["door"].latency_p50_ms <= 19.0 and by_id["door"].latency_p99_ms <= 19.0
    assert by_id["yard"].latency_p50_ms == by_id["yard"].latency_p99_ms == 200.0
    assert by_id["new"].latency_p50_ms is None  # no result yet: null, not a number borrowed from others


def test_a_streams_latency_window_is_bounded() -> None:
    stats = Stats()
    for _ in range(STREAM_SAMPLES + 500):
        stats.done("cam", 1.0)
    for _ in range(STREAM_SAMPLES):
        stats.done("cam", 0.002)  # the old spell has left the window
    assert len(stats.stream_latency["cam"]) == STREAM_SAMPLES
    assert max(stats.stream_latency["cam"]) == 0.002
