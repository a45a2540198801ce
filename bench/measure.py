"""Instruments shared by every system the bench runs: clocks, per-process sampling, throughput.

Everything here measures from the outside (psutil, wrapped OpenCV objects, a
Stats subclass), so the pipeline under test runs exactly the code users run.
All times are `time.monotonic()` seconds, the clock `Ticket.decoded_at` uses,
so instants taken in the orchestrator, in the bench and in other processes on
the same machine can be subtracted from one another.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable

import cv2
import numpy as np
import psutil

from pipeless.orchestrator.stats import Stats

now = time.monotonic

# A result counts as part of the first burst (e.g. the rest of the first batch) when it
# comes out within this long of the very first one; see steady_fps.
BURST_S = 0.002


def pct(values: Iterable[float], q: float) -> float | None:
    arr = np.fromiter(values, dtype=float)
    return float(np.percentile(arr, q)) if arr.size else None


def ms(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(value * 1000.0, 3)


def latency_ms(seconds: Iterable[float]) -> dict[str, float | None]:
    values = list(seconds)
    mean = float(np.mean(values)) if values else None
    return {"p50": ms(pct(values, 50)), "p99": ms(pct(values, 99)), "mean": ms(mean)}


def steady_fps(done_at: list[float]) -> tuple[float | None, float | None]:
    """Frames per second once the first result is out, and the seconds that covers.

    The same rule for every system (decode alone, onnxruntime alone, the naive
    loops, the pipeline): the clock starts when the first frame's result is out
    and stops at the last one; frames out within BURST_S of the first (the rest
    of a first batch) are not counted. So start-up, model load, the first
    inference's warm-up (TensorRT builds its engine then) and the pipeline's
    fill are excluded alike, and the figure is the rate a long video sees.
    """
    if len(done_at) < 2:
        return None, None
    times = sorted(done_at)
    first = times[0]
    span = times[-1] - first
    if span <= 0:
        return None, None
    counted = sum(1 for t in times if t > first + BURST_S)
    if counted == 0:  # everything came out within BURST_S: a tiny clip on a fast machine
        counted = len(times) - 1
    return counted / span, span


# -- per-process sampling ---------------------------------------------------------------


@dataclass
class _Track:
    pid: int
    role: str
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (t, cpu seconds, rss bytes)
    peak_rss: int = 0


class ProcessSampler(threading.Thread):
    """Samples CPU time and RSS of this process and all its descendants every `interval` seconds.

    Peak RSS is the kernel's own high-water mark (VmHWM) where Linux gives it
    (for this process too: its counter is restarted when the sampler is made),
    else the largest RSS sampled. CPU% is computed afterwards over a window (the timed part
    of a run, not the start-up), as (cpu seconds at the window's last sample -
    at its first) / wall seconds between them * 100: 100% is one full core.
    Children are named by `roles(pid) -> str` where known, else by command line.
    """

    def __init__(self, interval: float = 0.1) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.interval = interval
        self.me = psutil.Process()
        self.tracks: dict[int, _Track] = {}
        self.procs: dict[int, psutil.Process] = {self.me.pid: self.me}
        self.roles: dict[int, str] = {self.me.pid: "main"}
        self.system: list[tuple[float, float]] = []  # (t, busy cpu seconds of the whole machine)
        self.own_hwm = _reset_own_peak()  # our own VmHWM restarts here, so it is this row's peak
        self._halt = threading.Event()

    def name_pid(self, pid: int, role: str) -> None:
        self.roles[pid] = role

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)
        self.sample()

    def sample(self) -> None:
        self.system.append((now(), _busy_seconds()))
        for pid in _descendants(self.me.pid):
            if pid not in self.procs and pid not in self.tracks:
                try:
                    self.procs[pid] = psutil.Process(pid)
                except psutil.Error:
                    pass
        for pid, proc in list(self.procs.items()):
            try:
                with proc.oneshot():
                    cpu = proc.cpu_times()
                    rss = proc.memory_info().rss
                t = now()
            except psutil.Error:
                self.procs.pop(pid, None)
                continue
            track = self.tracks.get(pid)
            if track is None:
                track = self.tracks[pid] = _Track(pid, self._role(proc))
            track.samples.append((t, cpu.user + cpu.system, rss))
            hwm = _hwm(pid) if pid != self.me.pid or self.own_hwm else 0
            track.peak_rss = max(track.peak_rss, rss, hwm)

    def _role(self, proc: psutil.Process) -> str:
        if proc.pid in self.roles:
            return self.roles[proc.pid]
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            cmd = ""
        if "resource_tracker" in cmd:
            return "resource-tracker"
        return "child"

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(2.0)

    def others_percent(self, window: tuple[float, float], ours: list[dict]) -> float | None:
        """CPU% the rest of the machine used during `window` (other programs, not the systems under test)."""
        inside = [s for s in self.system if window[0] - self.interval <= s[0] <= window[1] + self.interval]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        busy = 100.0 * (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])
        mine = sum(p["cpu_percent"] or 0.0 for p in ours)
        return round(max(0.0, busy - mine), 1)

    def report(self, window: tuple[float, float] | None = None) -> list[dict]:
        """One entry per process: role, pid, peak RSS (MiB), CPU% over `window` (or the whole run)."""
        out = []
        for track in self.tracks.values():
            role = self.roles.get(track.pid, track.role)
            if role == "resource-tracker":
                continue  # multiprocessing's helper, idle; not part of any system under test
            samples = track.samples
            cpu = None
            if window is not None and window[1] > window[0] and len(samples) >= 2:
                # CPU time read off at the window's edges, interpolated between the samples around each
                # edge: taking whole samples instead stretched a 0.25 s row by up to 0.1 s of the
                # process's start-up on each side (a pass-through worker read 465% on 16 cores).
                used = _cpu_at(samples, window[1]) - _cpu_at(samples, window[0])
                cpu = round(100.0 * used / (window[1] - window[0]), 1)
            elif len(samples) >= 2 and samples[-1][0] > samples[0][0]:
                cpu = round(100.0 * (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0]), 1)
            out.append({"role": role, "pid": track.pid, "peak_rss_mb": round(track.peak_rss / 2**20, 1),
                        "cpu_percent": cpu})
        order = {"main": 0, "orchestrator": 0, "inference": 1}
        out.sort(key=lambda p: (order.get(p["role"], 2), p["role"]))
        return out


def _cpu_at(samples: list, t: float) -> float:
    """A process's cumulative CPU seconds at instant t, linear between the (time, cpu, ...) samples around
    it; before the first sample (the process did not exist yet) or after the last, the nearest one."""
    if t <= samples[0][0]:
        return samples[0][1]
    for before, after in zip(samples, samples[1:]):
        if before[0] <= t <= after[0]:
            span = after[0] - before[0]
            return before[1] + (after[1] - before[1]) * ((t - before[0]) / span if span > 0 else 1.0)
    return samples[-1][1]


def _descendants(pid: int) -> list[int]:
    """Pids of all descendants, from /proc/<pid>/task/*/children: ~20x cheaper than psutil's scan of /proc,
    which matters because the sampler shares the orchestrator's GIL (a 1 ms stall shows in its p99)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except (OSError, ValueError):
                if parent == pid and not os.path.exists(f"/proc/{parent}/task/{tid}/children"):
                    return [p.pid for p in psutil.Process(pid).children(recursive=True)]  # no such file here
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def _busy_seconds() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


def machine_idle(threshold: float = 25.0, max_wait: float = 30.0, sample_s: float = 0.5) -> tuple[float, float]:
    """Wait until the machine's CPU use (all programs) is under `threshold` % of one core, at most `max_wait` s.

    Returns (the last busy % seen, seconds waited). Between runs nothing of the
    bench runs, so whatever is busy belongs to someone else.
    """
    waited = 0.0
    while True:
        t0, b0 = now(), _busy_seconds()
        time.sleep(sample_s)
        busy = 100.0 * (_busy_seconds() - b0) / max(1e-6, now() - t0)
        if busy < threshold or waited >= max_wait:
            return round(busy, 1), round(waited, 1)
        waited += sample_s


def _reset_own_peak() -> bool:
    """Restart this process's peak-RSS counter (Linux: write 5 to clear_refs); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _hwm(pid: int) -> int:
    """The kernel's peak RSS for a process (VmHWM), 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def processes(sampler: ProcessSampler, window: tuple[float, float]) -> dict:
    """The row fields about processes: each one's peak RSS and CPU%, and what the rest of the machine used."""
    procs = sampler.report(window)
    return {"processes": procs, "others_cpu_percent": sampler.others_percent(window, procs)}


@contextlib.contextmanager
def sampling(interval: float = 0.1):
    sampler = ProcessSampler(interval)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()


# -- the pipeline's own clocks -------------------------------------------------------------


class BenchStats(Stats):
    """The router's Stats, plus the instant each result went out (for the steady-state rate)."""

    def __init__(self) -> None:
        super().__init__()
        self.done_at: list[float] = []

    def done(self, *args, **kwargs) -> None:
        super().done(*args, **kwargs)
        self.done_at.append(now())


@dataclass
class VideoIO:
    """What the wrapped OpenCV objects saw: time spent in read() and write(), per frame."""

    decode_s: list[float] = field(default_factory=list)
    decode_done_at: list[float] = field(default_factory=list)
    encode_s: list[float] = field(default_factory=list)
    first_read_at: float | None = None
    last_write_at: float | None = None
    decoded_into_given_buffer: int = 0  # reads whose pixels landed in the buffer passed in (the slot)
    decoded_elsewhere: int = 0


@contextlib.contextmanager
def timed_video_io(pace_fps: float | None = None):
    """Within the block, cv2.VideoCapture / VideoWriter made in this process are timed.

    The orchestrator opens its sources and outputs through `cv2.VideoCapture(...)`
    and `cv2.VideoWriter(...)`; wrapping the two constructors lets the bench time
    decode and encode inside a real run without touching pipeless code. Worker
    processes are separate interpreters and are unaffected. With `pace_fps`,
    read() waits for the next tick of that clock before decoding (to measure
    per-frame overhead without queueing); the wait is not counted as decode time.
    """
    io = VideoIO()
    real_capture, real_writer = cv2.VideoCapture, cv2.VideoWriter
    lock = threading.Lock()

    class TimedCapture:
        def __init__(self, *args, **kwargs) -> None:
            self._cap = real_capture(*args, **kwargs)
            self._next = None

        def read(self, image=None):
            if pace_fps:
                t = now()
                if self._next is None:
                    self._next = t
                elif self._next > t:
                    time.sleep(self._next - t)
                self._next += 1.0 / pace_fps
            t0 = now()
            ok, img = self._cap.read(image) if image is not None else self._cap.read()
            t1 = now()
            with lock:
                if io.first_read_at is None:
                    io.first_read_at = t0
                if ok and img is not None:
                    io.decode_s.append(t1 - t0)
                    io.decode_done_at.append(t1)
                    if image is not None and np.shares_memory(img, image):
                        io.decoded_into_given_buffer += 1
                    else:
                        io.decoded_elsewhere += 1
            return ok, img

        def __getattr__(self, name):
            return getattr(self._cap, name)

    class TimedWriter:
        def __init__(self, *args, **kwargs) -> None:
            self._writer = real_writer(*args, **kwargs)

        def write(self, image) -> None:
            t0 = now()
            self._writer.write(image)
            t1 = now()
            with lock:
                io.encode_s.append(t1 - t0)
                io.last_write_at = t1

        def __getattr__(self, name):
            return getattr(self._writer, name)

    cv2.VideoCapture, cv2.VideoWriter = TimedCapture, TimedWriter
    try:
        yield io
    finally:
        cv2.VideoCapture, cv2.VideoWriter = real_capture, real_writer


@contextlib.contextmanager
def stderr_to(path: str):
    """Send fd 2 (ours and that of every child started meanwhile) to a file: keeps the table readable."""
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as f:
        os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def mean_s(values: Iterable[float]) -> float | None:
    values = list(values)
    return float(np.mean(values)) if values else None

