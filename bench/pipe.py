"""Pipeless itself under the bench: `run_pipeline` on a generated pipeline.toml, measured from outside.

The run is the one `pipeless-orch -c` does (same function, same processes);
the bench only passes its own Stats (to note when each result went out),
wraps OpenCV's capture and writer constructors to time decode and encode,
samples every process with psutil, and reads the JSONL results afterwards
for what the filters reported.
"""

from __future__ import annotations

import inspect
import json
import os
import threading

import numpy as np

from pipeless.bench.filters import work_seconds
from pipeless.bench.measure import (BenchStats, latency_ms, mean_s, ms, now, processes, sampling, stderr_to, steady_fps,
                                    timed_video_io)
from pipeless.bench.work import Work, to_config
from pipeless.orchestrator.run import run_pipeline


class BenchRunError(RuntimeError):
    pass


def _roles_from(pipeline, sampler) -> None:
    """Name the children by role, from the Supervisor, when run_pipeline hands the pipeline over."""
    sup = getattr(pipeline, "sup", None)
    for child in getattr(sup, "children", {}).values():
        pid = getattr(child.process, "pid", None)
        if pid:
            sampler.name_pid(pid, getattr(child, "label", child.role))


def pipeless_run(work: Work, clip: str, workdir: str, *, workers: int, batch: int = 1,
                 providers: list[str] | None = None, pace_fps: float | None = None, tag: str = "pipeless") -> dict:
    cfg = to_config(work, clip, workdir, workers=workers, batch_size=batch, providers=providers, tag=tag)
    stats = BenchStats()
    stop = threading.Event()
    log_path = os.path.join(workdir, "bench.log")
    kwargs = {}
    with sampling() as sampler:
        if "on_started" in inspect.signature(run_pipeline).parameters:
            kwargs["on_started"] = lambda pipeline: _roles_from(pipeline, sampler)
        t_begin = now()
        try:
            with stderr_to(log_path), timed_video_io(pace_fps) as io:
                summary = run_pipeline(cfg, stop, stats, **kwargs)
        except Exception as exc:
            raise BenchRunError(f"pipeless run {tag} failed: {type(exc).__name__}: {exc} (log: {log_path})") from exc
        t_finish = now()
    if not summary.completed:
        raise BenchRunError(f"pipeless run {tag} did not complete (log: {log_path})")
    frames = sum(summary.frames.values())
    results = [json.loads(line) for line in open(cfg.results.file, "rb")]
    work_s = [work_seconds(r.get("data", {})) for r in results]
    latency = list(stats.latency_seconds)
    stage_means = {name: mean_s(v) for name, v in stats.stage_seconds.items()}
    rtt = {"pre": 0.0, "infer": 0.0, "post": 0.0}
    for name, value in stage_means.items():
        key = "infer" if name == "infer" else name.split(".")[0]
        rtt[key] = rtt.get(key, 0.0) + (value or 0.0)
    lat_mean = mean_s(latency)
    dispatch = lat_mean - sum(rtt.values()) if lat_mean is not None else None
    stages = {"decode": ms(mean_s(io.decode_s)), "pre": ms(rtt["pre"]) if "pre" in _kinds(stage_means) else None,
              "infer": ms(rtt["infer"]) if "infer" in stage_means else None,
              "post": ms(rtt["post"]) if "post" in _kinds(stage_means) else None,
              "output": ms(mean_s(io.encode_s)) if io.encode_s else None, "dispatch": ms(dispatch)}
    # Framework overhead per frame: end-to-end latency minus what the filters themselves spent.
    # Exact only without a model (the inference round trip is then not part of the latency).
    overhead = None
    if work.model is None and len(work_s) == len(latency):
        overhead = latency_ms([lat - ws for lat, ws in zip(latency, work_s)])
    t0 = io.first_read_at or t_begin
    t1 = max([t for t in (io.last_write_at, stats.done_at[-1] if stats.done_at else None) if t] or [t_finish])
    batch_sizes = list(stats.batch_sizes)
    shm_views = [r["data"][k]["shm"] for r in results for k in r.get("data", {})
                 if isinstance(r["data"][k], dict) and "shm" in r["data"][k]]
    fps, span = steady_fps(stats.done_at)
    row = {
        "system": "pipeless", "label": f"pipeless w{workers}" + (f" b{batch}" if work.model else ""),
        "workers": workers, "batch": batch if work.model else None, "frames": frames,
        "seconds": round(span, 4) if span else None, "fps": round(fps, 2) if fps else None,
        "latency_ms": latency_ms(latency), "stages_ms": stages,
        "stage_round_trips_ms": {name: ms(v) for name, v in stage_means.items()},
        "filter_work_ms": ms(mean_s(work_s)), "overhead_ms": overhead,
        "bytes_per_frame": _bytes(cfg, results, io, shm_views),
        **_name_orchestrator(processes(sampler, (t0, t1))),
        "provider": summary.provider or None,
        "batch_sizes": {"mean": round(float(np.mean(batch_sizes)), 2), "max": int(max(batch_sizes)),
                        "count": len(batch_sizes)} if batch_sizes else None,
        "startup_s": round(t0 - t_begin, 3), "paced_fps": pace_fps,
        "dropped": sum(summary.dropped.values()),
    }
    return row


def _kinds(stage_means: dict) -> set[str]:
    return {name.split(".")[0] for name in stage_means}


def _name_orchestrator(fields: dict) -> dict:
    for p in fields["processes"]:
        if p["role"] == "main":
            p["role"] = "orchestrator"
    return fields


def _bytes(cfg, results: list[dict], io, shm_views: list[bool]) -> dict:
    """Bytes written per frame, by whom: the accounting of docs/benchmarks.md, with what could be checked.

    decode: the decoder writes the pixels once, into the slot (checked: read() returned the slot's memory);
    tensor: letterbox writes the model input into the slot's tensor area (plus its small resized copy);
    batch_stack: the inference process stacks tensors of a batch > 1 (a fixed-batch-1 model: none);
    encode_read: the writer hands the slot itself to the encoder;
    messages: msgpack bytes on the sockets for one frame, recomputed from the results.
    """
    frame = results[0]["width"] * results[0]["height"] * 3 if results else 0
    tensor = 0
    stacked = 0
    if cfg.inference is not None:
        tensor = _tensor_nbytes(cfg)
        stacked = tensor if cfg.inference.batch_size > 1 and not _fixed_batch(cfg) else 0
    out = {"decode": frame, "tensor": tensor, "batch_stack": stacked,
           "encode_read": frame if cfg.streams[0].output else 0, "pickled": 0,
           "messages": _message_bytes(cfg, results)}
    out["total"] = sum(v for v in out.values() if isinstance(v, int))
    out["verified"] = {
        "decoded_in_place": io.decoded_elsewhere == 0 and io.decoded_into_given_buffer > 0,
        "filters_saw_shared_memory": bool(shm_views) and all(shm_views) if shm_views else None,
    }
    return out


_model_cache: dict[tuple, tuple[int, bool]] = {}


def _model_facts(cfg) -> tuple[int, bool]:
    key = (cfg.inference.model, cfg.inference.adapter, tuple(cfg.inference.input_size))
    if key not in _model_cache:
        from pipeless.workers.inference.adapters import get_adapter
        from pipeless.workers.inference.providers import open_session

        adapter = get_adapter(cfg.inference.adapter)
        session, _ = open_session(adapter.prepare(cfg.inference.model), ["cpu"])
        spec = adapter.model_input(session, cfg.inference)
        _model_cache[key] = (int(spec.nbytes), spec.max_batch == 1)
    return _model_cache[key]


def _tensor_nbytes(cfg) -> int:
    return _model_facts(cfg)[0]


def _fixed_batch(cfg) -> bool:
    return _model_facts(cfg)[1]


def _message_bytes(cfg, results: list[dict]) -> int | None:
    """Mean msgpack bytes per frame over every socket hop, rebuilt from each frame's result."""
    try:
        from pipeless.orchestrator.stages import plan_stages
        from pipeless.protocol import messages as m

        stages = plan_stages(cfg)
        total = 0
        for r in results:
            handle = m.SlotHandle(15, 10**6)
            dets = [m.Detection(d["label"], d["score"], d["box"]) for d in r.get("detections", [])]
            data = r.get("data", {})
            for stage in stages:
                if stage.kind == "infer":
                    total += len(m.encode(m.InferTask(handle, r["stream"], r["frame"])))
                    total += len(m.encode(m.InferDone(handle, dets, 8, 10**6)))
                    continue
                phase = stage.name.split(".")[0]
                before = dets if phase == "post" else []
                stage_data = {k: v for k, v in data.items() if k in stage.filters}
                total += len(m.encode(m.FilterTask(handle, r["stream"], r["frame"], r["pts"], stage.name, before)))
                total += len(m.encode(m.FilterDone(handle, stage.name, dets if phase == "post" else before,
                                                   stage_data)))
        return round(total / len(results)) if results else None
    except Exception:  # the message types changed shape: report nothing rather than a wrong figure
        return None
