"""The baselines: decode alone, onnxruntime alone, and the two pipelines users write by hand.

- decode ceiling: OpenCV decoding the clip into one preallocated buffer, nothing else;
- onnxruntime alone: session.run on ready batches of real letterboxed frames;
- naive loop: one process, read -> filters -> onnxruntime -> draw -> write;
- naive multiprocessing: a reader thread pickles frames through a
  multiprocessing.Queue to N worker processes (each with its own session),
  which send the annotated frames back the same way; the main process puts
  them in order and writes the video and the results.

Each returns a row of figures measured the way the pipeline's are (see measure.py).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from multiprocessing.reduction import ForkingPickler

import cv2
import numpy as np

from pipeless.bench.filters import work_seconds
from pipeless.bench.measure import latency_ms, mean_s, ms, now, processes, sampling, steady_fps
from pipeless.bench.work import FrameProcessor, Work
from pipeless.protocol.result import encode_json


def _clip_info(clip: str) -> tuple[int, int, float]:
    cap = cv2.VideoCapture(clip)
    try:
        return (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                float(cap.get(cv2.CAP_PROP_FPS) or 25.0))
    finally:
        cap.release()


def _row(system: str, label: str, done_at: list[float], frames: int, **extra) -> dict:
    fps, span = steady_fps(done_at)
    row = {"system": system, "label": label, "workers": None, "batch": None, "frames": frames,
           "seconds": round(span, 4) if span else None, "fps": round(fps, 2) if fps else None,
           "latency_ms": None, "stages_ms": None, "filter_work_ms": None, "overhead_ms": None,
           "bytes_per_frame": None, "processes": [], "others_cpu_percent": None, "provider": None,
           "batch_sizes": None, "startup_s": None, "paced_fps": None}
    row.update(extra)
    return row


# -- decode ceiling ----------------------------------------------------------------------


def decode_ceiling(clip: str) -> dict:
    """OpenCV decode alone, into one preallocated buffer: the physical limit of any pipeline here."""
    w, h, _ = _clip_info(clip)
    buf = np.empty((h, w, 3), dtype=np.uint8)
    cap = cv2.VideoCapture(clip)
    done_at, spent = [], []
    in_place = 0
    with sampling() as sampler:
        t_start = now()
        while True:
            t0 = now()
            ok, img = cap.read(buf)
            t1 = now()
            if not ok or img is None:
                break
            in_place += int(np.shares_memory(img, buf))
            done_at.append(t1)
            spent.append(t1 - t0)
        cap.release()
    window = (t_start, done_at[-1] if done_at else now())
    return _row("decode", "decode ceiling", done_at, len(done_at),
                stages_ms={"decode": ms(mean_s(spent))},
                bytes_per_frame={"decode": w * h * 3, "total": w * h * 3,
                                 "verified": {"decoded_in_place": in_place == len(done_at)}},
                **processes(sampler, window))


# -- onnxruntime alone -------------------------------------------------------------------


def onnxruntime_alone(work: Work, clip: str, batch: int, frames: int, providers: list[str] | None = None) -> dict:
    """session.run on batches of `batch` real letterboxed frames, `frames` frames in all.

    The same session options, provider choice and input as the pipeline's
    inference process; a model with a fixed batch of 1 runs `batch` single
    runs per batch, as the inference process does. Nothing else runs.
    """
    assert work.model is not None
    proc = FrameProcessor(work, providers)
    spec = proc.spec
    cap = cv2.VideoCapture(clip)
    tensors = []
    while len(tensors) < batch:
        ok, img = cap.read()
        if not ok:
            cap.release()
            cap = cv2.VideoCapture(clip)
            continue
        proc._letterbox(img, proc.tensor, spec)
        tensors.append(proc.tensor.copy())
    cap.release()
    stacked = np.stack(tensors)
    one_by_one = spec.max_batch == 1
    done_at = []
    n = 0
    with sampling() as sampler:
        # Warm up at the shape timed below, as the inference process does before its first frame (a GPU
        # provider tunes itself once per input shape, which takes seconds).
        proc.session.run(None, {spec.name: stacked[:1] if one_by_one else stacked})
        t_start = now()
        while n < frames:
            if one_by_one:
                for i in range(batch):
                    proc.session.run(None, {spec.name: stacked[i:i + 1]})
            else:
                proc.session.run(None, {spec.name: stacked})
            n += batch
            done_at.extend([now()] * batch)
    return _row("onnxruntime", f"onnxruntime alone b{batch}", done_at, n, batch=batch, provider=proc.provider,
                **processes(sampler, (t_start, done_at[-1])))


# -- naive loop --------------------------------------------------------------------------


def naive_loop(work: Work, clip: str, workdir: str, providers: list[str] | None = None, tag: str = "naive") -> dict:
    """One process: read -> filters -> onnxruntime -> draw -> write, as users write it before a framework."""
    w, h, fps = _clip_info(clip)
    t_setup = now()
    proc = FrameProcessor(work, providers)
    cap = cv2.VideoCapture(clip)
    writer = cv2.VideoWriter(os.path.join(workdir, f"{tag}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h)) \
        if work.output else None
    results = open(os.path.join(workdir, f"{tag}.jsonl"), "wb")
    startup = now() - t_setup
    done_at, latency, stages, work_s = [], [], {k: [] for k in ("decode", "pre", "infer", "post", "output")}, []
    index = 0
    with sampling() as sampler:
        t_start = now()
        while True:
            t0 = now()
            ok, img = cap.read()  # a fresh array per frame, as users write it
            t1 = now()
            if not ok:
                break
            result, took = proc.process(img, "bench", index, index / fps)
            results.write(encode_json(result) + b"\n")
            t2 = now()
            if writer is not None:
                writer.write(img)
            t3 = now()
            done_at.append(t2)
            latency.append(t2 - t1)
            stages["decode"].append(t1 - t0)
            for k in ("pre", "infer", "post"):
                stages[k].append(took[k])
            stages["output"].append(t3 - t2 + (t2 - t1 - sum(took.values())))
            work_s.append(work_seconds(result.data))
            index += 1
        t_end = now()
    cap.release()
    if writer is not None:
        writer.release()
    results.close()
    frame_bytes = w * h * 3
    tensor_bytes = int(proc.tensor.nbytes) if work.model else 0
    return _row("naive-loop", "naive loop", done_at, index, workers=1, batch=1 if work.model else None,
                latency_ms=latency_ms(latency),
                stages_ms={**{k: ms(mean_s(v)) for k, v in stages.items()}, "dispatch": 0.0},
                filter_work_ms=ms(mean_s(work_s)), provider=proc.provider or None, startup_s=round(startup, 3),
                bytes_per_frame=_naive_bytes(frame_bytes, tensor_bytes, work),
                **processes(sampler, (t_start, t_end)))


def _naive_bytes(frame_bytes: int, tensor_bytes: int, work: Work, pickled: int = 0) -> dict:
    out = {"decode": frame_bytes, "tensor": tensor_bytes,
           "encode_read": frame_bytes if work.output else 0, "pickled": pickled}
    out["total"] = sum(out.values())
    return out


# -- naive multiprocessing ------------------------------------------------------------------


def _mp_worker(work: Work, providers: list[str] | None, inq, outq) -> None:
    proc = FrameProcessor(work, providers)
    outq.put(("ready", os.getpid(), proc.provider))
    while True:
        item = inq.get()
        if item is None:
            break
        index, pts, decoded_at, img = item
        result, took = proc.process(img, "bench", index, pts)
        outq.put((index, decoded_at, img, encode_json(result), took, work_seconds(result.data)))
    outq.put(("bye", os.getpid(), ""))


def naive_multiprocessing(work: Work, clip: str, workdir: str, workers: int, providers: list[str] | None = None,
                          tag: str = "naive-mp", queue_size: int = 16) -> dict:
    """Frames pickled through multiprocessing.Queue to `workers` processes and back, reordered, written."""
    w, h, fps = _clip_info(clip)
    ctx = multiprocessing.get_context("spawn")  # fork after onnxruntime/OpenCV threads exist is unsafe
    inq, outq = ctx.Queue(maxsize=queue_size), ctx.Queue()
    t_setup = now()
    with sampling() as sampler:
        procs = [ctx.Process(target=_mp_worker, args=(work, providers, inq, outq), daemon=True)
                 for _ in range(workers)]
        for p in procs:
            p.start()
        provider = ""
        for _ in procs:
            tag_, pid, provider = outq.get(timeout=120)
            assert tag_ == "ready"
            sampler.name_pid(pid, f"worker {len(sampler.roles) - 1}")
        startup = now() - t_setup
        writer = cv2.VideoWriter(os.path.join(workdir, f"{tag}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                 (w, h)) if work.output else None
        results = open(os.path.join(workdir, f"{tag}.jsonl"), "wb")
        decode_s: list[float] = []
        pickled = {"out": 0, "back": 0}
        total = {"frames": None}

        def feed() -> None:
            cap = cv2.VideoCapture(clip)
            index = 0
            while True:
                t0 = now()
                ok, img = cap.read()
                t1 = now()
                if not ok:
                    break
                decode_s.append(t1 - t0)
                item = (index, index / fps, t1, img)
                if index == 0:
                    pickled["out"] = len(ForkingPickler.dumps(item))  # what Queue.put sends for one frame
                inq.put(item)
                index += 1
            cap.release()
            total["frames"] = index
            for _ in procs:
                inq.put(None)

        t_start = now()
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        pending: dict[int, tuple] = {}
        next_index = 0
        done_at, latency, work_s, output_s = [], [], [], []
        stages = {"pre": [], "infer": [], "post": []}
        while total["frames"] is None or next_index < total["frames"]:
            try:
                item = outq.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    raise RuntimeError("naive multiprocessing: every worker died") from None
                continue
            if item[0] in ("ready", "bye"):
                continue
            if not pickled["back"]:
                pickled["back"] = len(ForkingPickler.dumps(item))
            pending[item[0]] = item
            while next_index in pending:
                index, decoded_at, img, line, took, ws = pending.pop(next_index)
                t0 = now()
                results.write(line + b"\n")
                t1 = now()
                if writer is not None:
                    writer.write(img)
                t2 = now()
                done_at.append(t1)
                latency.append(t1 - decoded_at)
                output_s.append(t2 - t0)
                work_s.append(ws)
                for k in stages:
                    stages[k].append(took[k])
                next_index += 1
        t_end = now()
        feeder.join()
        for p in procs:
            p.join(5.0)
            if p.is_alive():
                p.terminate()
    if writer is not None:
        writer.release()
    results.close()
    busy = [a + b + c for a, b, c in zip(stages["pre"], stages["infer"], stages["post"])]
    dispatch = [lat - b for lat, b in zip(latency, busy)]
    tensor_bytes = 0
    if work.model is not None:
        tensor_bytes = _tensor_bytes(work, providers)
    return _row("naive-mp", f"naive multiprocessing w{workers}", done_at, next_index, workers=workers,
                batch=1 if work.model else None, latency_ms=latency_ms(latency),
                stages_ms={"decode": ms(mean_s(decode_s)), **{k: ms(mean_s(v)) for k, v in stages.items()},
                           "output": ms(mean_s(output_s)), "dispatch": ms(mean_s(dispatch))},
                filter_work_ms=ms(mean_s(work_s)), provider=provider or None, startup_s=round(startup, 3),
                bytes_per_frame=_naive_bytes(w * h * 3, tensor_bytes, work, pickled["out"] + pickled["back"]),
                **processes(sampler, (t_start, t_end)))


def _tensor_bytes(work: Work, providers) -> int:
    from pipeless.workers.inference.adapters import get_adapter
    from pipeless.workers.inference.providers import open_session

    cfg = work.model.section(1, providers)
    adapter = get_adapter(cfg.adapter)
    session, _ = open_session(adapter.prepare(cfg.model), ["cpu"])
    return adapter.model_input(session, cfg).nbytes

