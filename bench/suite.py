"""The workloads, quick and full, and where the measured figures stand against the targets.

Every workload is a group of rows measured back to back in this run: one row
is its baseline, and every row's `ratio` is its frames/s over the baseline's
frames/s from this same group. Targets are read off those ratios; nothing is
compared with a number from another run or another machine.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from pipeless.bench import clips as clipmod
from pipeless.bench.measure import machine_idle
from pipeless.bench.naive import decode_ceiling, naive_loop, naive_multiprocessing, onnxruntime_alone
from pipeless.bench.pipe import pipeless_run
from pipeless.bench.work import FILTERS, FilterSpec, ModelSpec, Work

SCHEMA = "pipeless-bench/1"

FRONT = ModelSpec(str(clipmod.MODELS / "blazeface-front-128.onnx"), "blazeface")
BACK = ModelSpec(str(clipmod.MODELS / "blazeface-back-256.onnx"), "blazeface")

PASS = (FilterSpec("pass_pre", "pre", f"{FILTERS}:passthrough"),
        FilterSpec("pass_post", "post", f"{FILTERS}:passthrough"))
ANNOTATE = (FilterSpec("blur", "post", f"{FILTERS}:blur"), FilterSpec("draw", "post", f"{FILTERS}:draw"))
DENOISE = FilterSpec("denoise", "pre", f"{FILTERS}:denoise", {"d": 7, "sigma": 50.0})
GRADE = FilterSpec("grade", "pre", f"{FILTERS}:grade", {"gamma": 0.8, "saturation": 1.3})
DRAW = (FilterSpec("draw", "post", f"{FILTERS}:draw"),)

WORK_PASS = Work("pass-through", PASS, None, output=False)
WORK_DEMO = Work("demo", ANNOTATE, FRONT, output=True)
WORK_HEAVY = Work("heavy", (DENOISE, *ANNOTATE), FRONT, output=True)
WORK_GRADE = Work("grade", (GRADE, *ANNOTATE), FRONT, output=True)
WORK_DETECT = Work("detect", DRAW, FRONT, output=True)


@dataclass
class Plan:
    """What a mode runs. `tiny` is the smoke test's: every kind of row, on a few frames."""

    mode: str
    frames_720: int
    frames_1080: int
    frames_heavy: int
    frames_demo: int  # 0: the shipped clip as is (120 frames)
    frames_batch: int
    centerface_size: tuple[int, int]
    workers: list[int]  # pipeless worker counts swept where a sweep is shown
    main_workers: int  # workers for the head-to-head rows (naive multiprocessing and pipeless alike)
    batches: list[int]
    models: list[ModelSpec] = field(default_factory=list)  # extra fixed-batch models vs onnxruntime alone
    only: set[str] = field(default_factory=set)
    frames_camera: int = 90  # the pass-through paced like a 30 frames/s camera
    repeats: int = 1  # rounds of every group (rows interleaved); each row keeps its median-fps round
    repeats_pass: int = 3  # rounds of the cheap, noisy pass-through group
    repeats_infer: int = 2  # rounds of each inference-only group

    @classmethod
    def make(cls, mode: str, only: set[str] | None = None) -> "Plan":
        cores = os.cpu_count() or 2
        main = max(2, min(cores, 4))
        if mode == "full":
            sweep = list(range(1, min(cores, 8) + 1)) if cores > 1 else [1, 2]
            return cls("full", 900, 300, 240, 600, 240, (640, 480), sweep, main, [1, 4, 8], [BACK, FRONT],
                       only or set(), 300, 3, 5, 3)
        if mode == "tiny":
            return cls("tiny", 24, 16, 8, 24, 16, (128, 96), [2], 2, [4], [BACK], only or set(), 6, 1, 1, 1)
        return cls("quick", 300, 60, 60, 0, 120, (320, 256), [1, 2], main, [1, 4, 8], [BACK], only or set())


@dataclass
class Context:
    plan: Plan
    workdir: str
    providers: list[str] | None
    say: Callable[[str], None]
    settle: float = 0.0  # before each row, wait up to this long for other programs to go quiet
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    clips: dict[str, clipmod.Clip] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _gpu_provider: bool | None = None

    def clip(self, width: int, height: int, frames: int) -> clipmod.Clip:
        if (width, height) == (176, 144) and frames in (0, 120):
            clip = clipmod.sample()
            name = "carphone"
        else:
            clip = clipmod.made(os.path.join(self.workdir, "clips"), width, height, frames)
            name = f"{height}p-{frames}f" if height != 144 else f"carphone-{frames}f"
        self.clips[name] = clip
        return clip

    def on_gpu(self) -> bool:
        """Whether the requested providers really run the models on a GPU here (probed once)."""
        if self._gpu_provider is None:
            from pipeless.workers.inference.providers import CPU, open_session

            _, provider = open_session(FRONT.path, self.providers or [])
            self._gpu_provider = provider != CPU
        return self._gpu_provider

    def run_dir(self, workload: str) -> str:
        path = os.path.join(self.workdir, "runs", workload)
        os.makedirs(path, exist_ok=True)
        return path


GPU_FRAMES_FACTOR = 10
DISTURBED = 25.0  # % CPU other programs may use during a row before --settle measures it again


def _measure(ctx: Context, thunk: Callable[[], dict]) -> dict:
    """One row. With --settle: wait for a quiet machine first, and measure again (twice at most) when other
    programs used more than DISTURBED % CPU meanwhile, keeping the least disturbed attempt."""
    best = None
    for attempt in range(3 if ctx.settle else 1):
        busy_before = machine_idle(max_wait=ctx.settle)[0] if ctx.settle else None
        t0 = time.monotonic()
        row = thunk()
        row["machine_busy_before_percent"] = busy_before
        row["attempts"] = attempt + 1
        row["_took"] = time.monotonic() - t0
        others = row.get("others_cpu_percent") or 0.0
        if best is None or others < (best.get("others_cpu_percent") or 0.0):
            best = row
        if others < DISTURBED:
            break
        ctx.say(f"    ({row['label']}: other programs used {others:.0f}% CPU meanwhile"
                + ("; measuring it again)" if attempt < 2 and ctx.settle else ")"))
    return best


def _say_row(ctx: Context, row: dict, extra: str = "") -> None:
    others = row.get("others_cpu_percent")
    ctx.say(f"    {row['label']:<32} {row['fps'] or 0:9.1f} frames/s  ({row.pop('_took', 0.0):.1f} s"
            + (f", other programs used {others:.0f}% CPU meanwhile" if others and others >= 10 else "")
            + extra + ")")


def _group(ctx: Context, name: str, description: str, clip: clipmod.Clip, work: Work | None,
           rows: list[tuple[str, Callable[[], dict]]], baseline: str, repeats: int | None = None) -> dict:
    """Run each (key, thunk) in turn, `repeats` rounds; the row keyed `baseline` is every ratio's denominator.

    Rounds interleave the rows (baseline, a, b, baseline, a, b, ...) so a slow
    spell of the machine hits them alike; each row keeps its median-fps round,
    and lists every round's frames/s in `fps_runs`.
    """
    repeats = repeats or ctx.plan.repeats
    ctx.say(f"  {name}: {description}" + (f" ({repeats} rounds)" if repeats > 1 else ""))
    attempts: dict[str, list[dict]] = {key: [] for key, _ in rows}
    for _ in range(repeats):
        for key, thunk in rows:
            row = _measure(ctx, thunk)
            row["key"] = key
            row["run_id"] = ctx.run_id
            _say_row(ctx, row)
            attempts[key].append(row)
    measured = []
    for key, _ in rows:
        tries = sorted(attempts[key], key=lambda r: r["fps"] or 0.0)
        row = tries[len(tries) // 2]
        row["fps_runs"] = [r["fps"] for r in attempts[key]]
        measured.append(row)
    base = next(r for r in measured if r["key"] == baseline)
    for row in measured:
        row["baseline"] = row is base
        row["ratio"] = _ratio(row, base)
    return {"name": name, "description": description, "work": work.describe() if work else "",
            "clip": {"path": clip.path, "width": clip.width, "height": clip.height, "frames": clip.frames},
            "baseline": baseline, "baseline_fps": base["fps"], "repeats": repeats, "rows": measured}


def _ratio(row: dict, base: dict) -> float | None:
    return round(row["fps"] / base["fps"], 3) if row["fps"] and base["fps"] else None


# -- the workloads -------------------------------------------------------------------------


def passthrough_720p(ctx: Context) -> dict:
    clip = ctx.clip(1280, 720, ctx.plan.frames_720)
    d = ctx.run_dir("passthrough-720p")
    rows: list[tuple[str, Callable[[], dict]]] = [("decode", lambda: decode_ceiling(clip.path))]
    for w in ctx.plan.workers:
        rows.append((f"pipeless-w{w}", lambda w=w: pipeless_run(WORK_PASS, clip.path, d, workers=w,
                                                                    tag=f"pipeless-w{w}")))
    group = _group(ctx, "passthrough-720p", "pass-through filters (pre + post), no model, no video out",
                   clip, WORK_PASS, rows, "decode", ctx.plan.repeats_pass)
    # The same, paced (read() waits for the next tick): per-frame overhead without queueing behind decode,
    # at a camera's 30 frames/s (on a short clip) and at half the decode ceiling just measured.
    w = ctx.plan.main_workers
    base = next(r for r in group["rows"] if r["baseline"])
    camera = ctx.clip(1280, 720, ctx.plan.frames_camera)
    half = round(0.5 * group["baseline_fps"], 1)
    for key, label, path, pace in ((f"pipeless-w{w}-paced-30", f"pipeless w{w} paced 30/s", camera.path, 30.0),
                                   (f"pipeless-w{w}-paced-half", f"pipeless w{w} paced {half:.0f}/s", clip.path, half)):
        row = _measure(ctx, lambda path=path, pace=pace, key=key: pipeless_run(WORK_PASS, path, d, workers=w,
                                                                               pace_fps=pace, tag=key))
        row.update(key=key, run_id=ctx.run_id, baseline=False, label=label, ratio=_ratio(row, base))
        _say_row(ctx, row, f", decode paced at {pace:.0f}/s" + (f", {camera.frames} frames" if path != clip.path
                                                                 else ""))
        group["rows"].append(row)
    return group


def demo_carphone(ctx: Context) -> dict:
    clip = ctx.clip(176, 144, ctx.plan.frames_demo)
    d = ctx.run_dir("demo-carphone")
    w = ctx.plan.main_workers
    rows: list[tuple[str, Callable[[], dict]]] = [
        ("decode", lambda: decode_ceiling(clip.path)),
        ("naive-loop", lambda: naive_loop(WORK_DEMO, clip.path, d, ctx.providers)),
        ("naive-mp", lambda: naive_multiprocessing(WORK_DEMO, clip.path, d, w, ctx.providers)),
    ]
    for n in ctx.plan.workers:
        rows.append((f"pipeless-w{n}-b1", lambda n=n: pipeless_run(WORK_DEMO, clip.path, d, workers=n, batch=1,
                                                                   providers=ctx.providers, tag=f"w{n}b1")))
    for b in ctx.plan.batches[1:]:
        rows.append((f"pipeless-w{w}-b{b}", lambda b=b: pipeless_run(WORK_DEMO, clip.path, d, workers=w, batch=b,
                                                                     providers=ctx.providers, tag=f"w{w}b{b}")))
    return _group(ctx, "demo-carphone", "the demo (blazeface-front-128, blur, boxes, encode) on the shipped clip",
                  clip, WORK_DEMO, rows, "naive-loop")


def heavy_720p(ctx: Context, work: Work, name: str, description: str) -> dict:
    clip = ctx.clip(1280, 720, ctx.plan.frames_heavy)
    d = ctx.run_dir(name)
    rows: list[tuple[str, Callable[[], dict]]] = [
        ("naive-loop", lambda: naive_loop(work, clip.path, d, ctx.providers)),
    ]
    workers = sorted(set(ctx.plan.workers) | {2}) if ctx.plan.mode == "full" else [2]
    for n in workers:
        rows.append((f"pipeless-w{n}", lambda n=n: pipeless_run(work, clip.path, d, workers=n, batch=1,
                                                                providers=ctx.providers, tag=f"w{n}")))
    if ctx.plan.mode == "full":
        rows.append(("naive-mp", lambda: naive_multiprocessing(work, clip.path, d, 2, ctx.providers)))
    return _group(ctx, name, description, clip, work, rows, "naive-loop")


def at_1080p(ctx: Context, work: Work, name: str, description: str) -> dict:
    clip = ctx.clip(1920, 1080, ctx.plan.frames_1080)
    d = ctx.run_dir(name)
    w = ctx.plan.main_workers
    rows: list[tuple[str, Callable[[], dict]]] = [
        ("decode", lambda: decode_ceiling(clip.path)),
        ("naive-mp", lambda: naive_multiprocessing(work, clip.path, d, w, ctx.providers)),
        ("naive-loop", lambda: naive_loop(work, clip.path, d, ctx.providers)),
    ]
    workers = sorted(set(ctx.plan.workers) | {w}) if ctx.plan.mode == "full" else [w]
    for n in workers:
        rows.append((f"pipeless-w{n}", lambda n=n: pipeless_run(work, clip.path, d, workers=n, batch=1,
                                                                providers=ctx.providers, tag=f"w{n}")))
    return _group(ctx, name, description, clip, work, rows, "naive-mp")


def batched(ctx: Context, model: ModelSpec, batch: int) -> dict:
    """The pipeline's inference throughput against onnxruntime's own, same model, batch and frames."""
    # On a GPU a batch of the small models takes well under a millisecond: the CPU's frame count would be
    # over in a tenth of a second, shorter than the noise, so a GPU run times GPU_FRAMES_FACTOR times more.
    frames = ctx.plan.frames_batch * (GPU_FRAMES_FACTOR if ctx.on_gpu() else 1)
    clip = ctx.clip(176, 144, frames if frames != 120 else 0)
    name = f"infer-{model.label}-b{batch}"
    d = ctx.run_dir(name)
    work = Work("infer", (), model, output=False)
    w = ctx.plan.main_workers
    frames = clip.frames
    rows: list[tuple[str, Callable[[], dict]]] = [
        ("onnxruntime", lambda: onnxruntime_alone(work, clip.path, batch, frames, ctx.providers)),
        (f"pipeless-w{w}-b{batch}", lambda: pipeless_run(work, clip.path, d, workers=w, batch=batch,
                                                          providers=ctx.providers, tag=f"w{w}b{batch}")),
    ]
    return _group(ctx, name, f"inference only: {model.label}, batch {batch}, no filters, no video out",
                  clip, work, rows, "onnxruntime", ctx.plan.repeats_infer)


def wasm_draw(ctx: Context) -> dict | None:
    """bench/wasm_draw.py (the wasm engineer's): draw_detections per language against native cv2.

    It is run as it is (its main(argv), output parsed) when it exists; a module
    offering run(ctx) -> group instead is called that way. Its figures are per
    call (microseconds), so rows carry fps = 1e6 / us and the ratio to native.
    """
    try:
        module = importlib.import_module("pipeless.bench.wasm_draw")
    except ModuleNotFoundError as exc:
        if exc.name != "pipeless.bench.wasm_draw":
            raise
        ctx.notes.append("wasm-draw: skipped, bench/wasm_draw.py does not exist yet")
        return None
    if hasattr(module, "run"):
        return module.run(ctx)
    args = {"tiny": ["--iters", "10", "--rounds", "1"], "quick": ["--iters", "100", "--rounds", "3"]}.get(
        ctx.plan.mode, [])
    ctx.say("  wasm-draw: draw_detections as wasm components vs native cv2 (bench/wasm_draw.py)")
    out = io.StringIO()
    t0 = time.monotonic()
    try:
        with contextlib.redirect_stdout(out):
            module.main(args)
    except BaseException as exc:  # its toolchains or components missing: a note, not a failed bench
        ctx.notes.append(f"wasm-draw: failed, {type(exc).__name__}: {exc}")
        return None
    text = out.getvalue()
    rows, crossings = [], {}
    for line in text.splitlines():
        m = re.match(r"\s+(.+?)\s+([\d.]+) us/(frame|call)", line)
        if not m:
            continue
        name, us = m.group(1).strip(), float(m.group(2))
        if m.group(3) == "call":
            crossings[name] = us
            continue
        rows.append({"system": "wasm-draw", "label": f"draw {name}", "key": name, "run_id": ctx.run_id,
                     "workers": None, "batch": None, "frames": None, "seconds": None,
                     "fps": round(1e6 / us, 1) if us else None, "us_per_frame": us, "latency_ms": None,
                     "stages_ms": None, "bytes_per_frame": None, "processes": [], "others_cpu_percent": None})
    base = next((r for r in rows if r["key"].startswith("native")), None)
    if base is None:
        ctx.notes.append("wasm-draw: ran, but printed no 'native' line to compare with")
        return None
    for row in rows:
        row["baseline"] = row is base
        row["ratio"] = _ratio(row, base)
        ctx.say(f"    {row['label']:<32} {row['us_per_frame']:9.1f} us/frame")
    ctx.say(f"    ({time.monotonic() - t0:.1f} s)")
    first = text.strip().splitlines()[0] if text.strip() else ""
    return {"name": "wasm-draw", "description": first or "draw_detections per language vs native cv2",
            "work": "draw_detections, 10 boxes", "clip": {"path": "", "width": None, "height": None, "frames": None},
            "baseline": base["key"], "baseline_fps": base["fps"], "rows": rows, "crossings_us": crossings,
            "text": text}


def workloads(ctx: Context) -> list[tuple[str, Callable[[], dict | None]]]:
    plan = ctx.plan
    out: list[tuple[str, Callable[[], dict | None]]] = [
        ("passthrough-720p", lambda: passthrough_720p(ctx)),
        ("demo-carphone", lambda: demo_carphone(ctx)),
        ("heavy-720p", lambda: heavy_720p(
            ctx, WORK_HEAVY, "heavy-720p", "CPU-heavy, OpenCV: bilateral denoise (d=7), then the demo's work")),
        ("grade-720p", lambda: heavy_720p(
            ctx, WORK_GRADE, "grade-720p", "CPU-heavy, numpy: colour grade of every frame, then the demo's work")),
        ("demo-1080p", lambda: at_1080p(ctx, WORK_DEMO, "demo-1080p", "the demo's work at 1080p")),
        ("detect-1080p", lambda: at_1080p(ctx, WORK_DETECT, "detect-1080p",
                                          "light work at 1080p: detect faces, draw boxes, encode")),
    ]
    centerface = ModelSpec(str(clipmod.MODELS / "centerface.onnx"), "centerface", plan.centerface_size)
    for b in plan.batches:
        out.append((f"infer-centerface-b{b}", lambda b=b: batched(ctx, centerface, b)))
    for model in plan.models:
        out.append((f"infer-{os.path.basename(model.path).removesuffix('.onnx')}-b1",
                    lambda model=model: batched(ctx, model, 1)))
    out.append(("wasm-draw", lambda: wasm_draw(ctx)))
    if plan.only:
        out = [(k, f) for k, f in out if any(k.startswith(o) for o in plan.only)]
    return out


# -- targets -------------------------------------------------------------------------------


def _find(groups: list[dict], name: str) -> dict | None:
    return next((g for g in groups if g["name"] == name), None)


def _cpu(row: dict) -> float:
    return sum(p["cpu_percent"] or 0.0 for p in row.get("processes") or [])


def _target(tid: str, text: str, goal: str, measured, met: bool | None, source: str, rows: list[dict],
            note: str = "") -> dict:
    """One target; `rows` are those its figure was read from, to flag a figure other programs disturbed."""
    others = max((r.get("others_cpu_percent") or 0.0 for r in rows), default=0.0)
    disturbed = others >= DISTURBED
    if disturbed:
        note = (note + "; " if note else "") + f"other programs used up to {others:.0f}% CPU meanwhile: unreliable"
    return {"id": tid, "target": text, "goal": goal, "measured": measured, "met": met, "from": source,
            "note": note, "disturbed": disturbed}


def targets(groups: list[dict]) -> list[dict]:
    out = []
    g = _find(groups, "passthrough-720p")
    if g:
        base = next(r for r in g["rows"] if r["baseline"])
        free = [r for r in g["rows"] if r["system"] == "pipeless" and not r.get("paced_fps")]
        best = max(free, key=lambda r: r["ratio"] or 0, default=None)
        if best:
            out.append(_target("passthrough-vs-decode", "pipeless, pass-through filters, no model: >= 85% of the "
                               "decode ceiling at 720p", ">= 0.85", best["ratio"], (best["ratio"] or 0) >= 0.85,
                               f"passthrough-720p: {best['label']} / decode ceiling", [best, base],
                               f"decode alone kept {_cpu(base):.0f}% CPU busy, {best['label']} {_cpu(best):.0f}%"))
        paced = [r for r in g["rows"] if r.get("paced_fps") and r["overhead_ms"]]
        if paced:
            measured = {r["label"]: {"p50_ms": r["overhead_ms"]["p50"], "p99_ms": r["overhead_ms"]["p99"]}
                        for r in paced}
            sat = best["overhead_ms"] if best else None
            note = (f"unpaced ({best['label']}, frames queue behind decode): p50 {sat['p50']} ms, "
                    f"p99 {sat['p99']} ms") if sat else ""
            out.append(_target("framework-overhead", "framework overhead (dispatch + routing + reorder, no filter "
                               "work, no model): < 1 ms p50, < 3 ms p99 per frame", "p50 < 1 ms, p99 < 3 ms, "
                               "at every paced rate", measured,
                               all(v["p50_ms"] < 1.0 and v["p99_ms"] < 3.0 for v in measured.values()),
                               "passthrough-720p: paced rows (end-to-end latency minus filter work)", paced, note))
    for g in (g for g in groups if g["name"] in ("heavy-720p", "grade-720p")):
        row = next((r for r in g["rows"] if r["key"] == "pipeless-w2"), None)
        base = next(r for r in g["rows"] if r["baseline"])
        if row:
            out.append(_target(f"{g['name']}-2-workers", f"CPU-heavy workload ({g['name']}): 2 workers >= 1.7x the "
                               "naive loop on 2 cores", ">= 1.7", row["ratio"], (row["ratio"] or 0) >= 1.7,
                               f"{g['name']}: pipeless w2 / naive loop", [row, base],
                               f"{os.cpu_count()} logical CPUs here; the naive loop kept {_cpu(base):.0f}% CPU busy, "
                               f"pipeless w2 {_cpu(row):.0f}%"))
    for g in (g for g in groups if g["name"] in ("demo-1080p", "detect-1080p")):
        mp = next(r for r in g["rows"] if r["key"] == "naive-mp")
        row = next((r for r in g["rows"] if r["key"] == f"pipeless-w{mp['workers']}"), None)
        if row:
            out.append(_target(f"{g['name']}-vs-naive-mp", f"1080p ({g['name']}): >= 3x the naive multiprocessing "
                               "pipeline", ">= 3.0", row["ratio"], (row["ratio"] or 0) >= 3.0,
                               f"{g['name']}: {row['label']} / naive multiprocessing w{mp['workers']}", [row, mp],
                               f"naive multiprocessing kept {_cpu(mp):.0f}% CPU busy, {row['label']} {_cpu(row):.0f}%"))
    infer = [g for g in groups if g["name"].startswith("infer-")]
    if infer:
        per = {g["name"]: next(r["ratio"] for r in g["rows"] if r["system"] == "pipeless") for g in infer}
        worst = min(per.values(), key=lambda v: v or 0)
        rows = [r for g in infer for r in g["rows"]]
        out.append(_target("batched-vs-onnxruntime", "batched inference through the pipeline >= 90% of "
                           "onnxruntime's own throughput, same model and batch size", ">= 0.90 each",
                           per, all((v or 0) >= 0.9 for v in per.values()),
                           "infer-*: pipeless / onnxruntime alone", rows, f"lowest {worst}"))
    return out


# -- the machine -----------------------------------------------------------------------------


def machine() -> dict:
    import cv2
    import numpy
    import onnxruntime
    import psutil

    info = {"platform": platform.platform(), "python": sys.version.split()[0],
            "cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "physical_cores": psutil.cpu_count(logical=False),
            "ram_gib": round(psutil.virtual_memory().total / 2**30, 1), "gpu": _gpu(),
            "onnxruntime": onnxruntime.__version__, "providers_built_in": onnxruntime.get_available_providers(),
            "opencv": cv2.__version__, "numpy": numpy.__version__, "lscpu": _lscpu()}
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _lscpu() -> list[str]:
    if not shutil.which("lscpu"):
        return []
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    keep = ("Architecture", "CPU(s)", "Model name", "Thread(s) per core", "Core(s) per socket", "Socket(s)",
            "CPU max MHz", "L2 cache", "L3 cache", "Hypervisor vendor")
    return [" ".join(line.split()) for line in out.splitlines() if line.split(":")[0].strip() in keep]


def _gpu() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def run_suite(plan: Plan, workdir: str, providers: list[str] | None, say: Callable[[str], None],
              settle: float = 0.0) -> dict:
    os.makedirs(workdir, exist_ok=True)
    ctx = Context(plan, workdir, providers, say, settle)
    started = time.time()
    t0 = time.monotonic()
    groups = []
    for name, thunk in workloads(ctx):
        group = thunk()
        if group is not None:
            groups.append(group)
    report = {
        "schema": SCHEMA, "run_id": ctx.run_id, "mode": plan.mode,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.monotonic() - t0, 1), "machine": machine(), "providers_requested": providers or [],
        "workdir": workdir, "clips": {k: c.as_dict() for k, c in ctx.clips.items()},
        "workloads": groups, "targets": targets(groups), "notes": ctx.notes,
    }
    return report
