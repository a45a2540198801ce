"""What a workload does to each frame, described once and run by every system.

A `Work` is a list of filters (by "module:function", the same strings a
pipeline.toml uses), an optional model, and whether the annotated video is
written. `to_config` turns it into the pipeline.toml pipeless runs;
`FrameProcessor` is the same work written the way a user writes it in one
process (read -> filters -> onnxruntime -> draw -> write), used by the naive
loop and by each naive multiprocessing worker.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeless.orchestrator.config import InferenceSection, PipelineConfig, load
from pipeless.protocol.result import FrameResult
from pipeless.workers.filters.python_filter import load_function
from pipeless.workers.frame import Frame

FILTERS = "pipeless.bench.filters"


@dataclass(frozen=True)
class FilterSpec:
    name: str
    stage: str  # "pre" | "post"
    function: str  # "module:function"
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    path: str
    adapter: str
    input_size: tuple[int, int] | None = None  # for models with symbolic dims (centerface)
    score_threshold: float = 0.5

    @property
    def label(self) -> str:
        name = os.path.basename(self.path).removesuffix(".onnx")
        return name + (f"@{self.input_size[0]}x{self.input_size[1]}" if self.input_size else "")

    def section(self, batch_size: int = 1, providers: list[str] | None = None) -> InferenceSection:
        return InferenceSection(model=self.path, adapter=self.adapter, batch_size=batch_size,
                                input_size=list(self.input_size or []), score_threshold=self.score_threshold,
                                providers=list(providers or []))


@dataclass(frozen=True)
class Work:
    name: str
    filters: tuple[FilterSpec, ...] = ()
    model: ModelSpec | None = None
    output: bool = True  # write the annotated video

    def describe(self) -> str:
        parts = [f"{f.stage}:{f.name}" for f in self.filters if f.stage == "pre"]
        if self.model:
            parts.append(f"model:{self.model.label}")
        parts += [f"{f.stage}:{f.name}" for f in self.filters if f.stage == "post"]
        parts.append("encode" if self.output else "no video out")
        return " -> ".join(parts)


def to_config(work: Work, clip: str, workdir: str, *, workers: int, batch_size: int = 1,
              providers: list[str] | None = None, slots: int = 0, tag: str = "run") -> PipelineConfig:
    """The pipeline.toml for `work` on `clip`, written to workdir and loaded (validated) like a user's."""
    doc: dict[str, Any] = {
        "pipeline": {"workers": workers, "slots": slots},
        "streams": [{"id": "bench", "input": clip}],
        "filters": [{"name": f.name, "stage": f.stage, "kind": "python", "function": f.function,
                     "config": f.config} for f in work.filters],
        "results": {"file": os.path.join(workdir, f"{tag}.jsonl")},
    }
    if work.output:
        doc["streams"][0]["output"] = os.path.join(workdir, f"{tag}.mp4")
    if work.model is not None:
        inf = work.model.section(batch_size, providers)
        doc["inference"] = {"model": inf.model, "adapter": inf.adapter, "batch_size": inf.batch_size,
                            "score_threshold": inf.score_threshold}
        if inf.input_size:
            doc["inference"]["input_size"] = inf.input_size
        if inf.providers:
            doc["inference"]["providers"] = inf.providers
    path = os.path.join(workdir, f"{tag}.toml")
    with open(path, "w") as f:
        f.write(toml_text(doc))
    return load(path)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def toml_text(doc: dict[str, Any]) -> str:
    """TOML for a pipeline document: tables of scalars, arrays of tables, inline tables below that."""
    lines: list[str] = []
    for key, value in doc.items():
        tables = value if isinstance(value, list) else [value]
        for table in tables:
            lines.append(f"[[{key}]]" if isinstance(value, list) else f"[{key}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
            lines.append("")
    return "\n".join(lines)


class FrameProcessor:
    """The per-frame work in one process, as a user writes it; returns the result and what each step took."""

    def __init__(self, work: Work, providers: list[str] | None = None) -> None:
        from pipeless.workers.inference.adapters import get_adapter
        from pipeless.workers.inference.letterbox import letterbox_into
        from pipeless.workers.inference.providers import open_session

        self.work = work
        self.pre = [(f.name, load_function(f.function), f.config) for f in work.filters if f.stage == "pre"]
        self.post = [(f.name, load_function(f.function), f.config) for f in work.filters if f.stage == "post"]
        self.session = None
        self.provider = ""
        self._letterbox = letterbox_into
        if work.model is not None:
            self.cfg = work.model.section(1, providers)
            self.adapter = get_adapter(self.cfg.adapter)
            self.session, self.provider = open_session(self.adapter.prepare(self.cfg.model), self.cfg.providers)
            self.spec = self.adapter.model_input(self.session, self.cfg)
            self.tensor = np.empty(self.spec.shape, dtype=np.float32)
            # One run before the clock, as the pipeline's inference process makes before its first frame: a GPU
            # provider tunes itself on the first run (seconds), which would otherwise land in the first results
            # (naive multiprocessing on the H100 then delivered its frames in one late burst).
            self.session.run(None, {self.spec.name: np.zeros((1, *self.spec.shape), np.float32)})

    def process(self, image: np.ndarray, stream: str, index: int, pts: float) -> tuple[FrameResult, dict[str, float]]:
        from time import perf_counter as clock

        h, w = image.shape[:2]
        frame = Frame(image, stream, index, pts, [])
        t0 = clock()
        for name, fn, cfg in self.pre:
            out = fn(frame, cfg)
            if out is not None:
                frame.data[name] = out
        if self.session is not None:
            self._letterbox(image, self.tensor, self.spec)
        t1 = clock()
        if self.session is not None:
            outputs = self.session.run(None, {self.spec.name: self.tensor[None]})
            frame.detections = self.adapter.decode(outputs, [(w, h)], self.spec, self.cfg)[0]
        t2 = clock()
        for name, fn, cfg in self.post:
            out = fn(frame, cfg)
            if out is not None:
                frame.data[name] = out
        t3 = clock()
        result = FrameResult(stream, index, pts, w, h, frame.detections, frame.data)
        return result, {"pre": t1 - t0, "infer": t2 - t1, "post": t3 - t2}
