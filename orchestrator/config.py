"""`pipeline.toml`, decoded by msgspec into typed Structs with defaults.

Every mistake a user can make in the file (a wrong key, type or value, a path
that does not exist) becomes a ConfigError whose message is one line naming
the file and the key, so `pipeless-orch` can print it without a traceback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import msgspec
import msgspec.inspect

from pipeless.protocol.endpoints import EndpointError, parse_spec


class ConfigError(Exception):
    """A one-line, user-facing description of what is wrong in the config."""


class PipelineSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    workers: int = 0  # 0: one per core
    slots: int = 0  # frames in the shared-memory ring; 0: sized for what workers and batches keep in flight
    max_width: int = 0  # 0: the widest configured stream (set it to add larger streams later)
    max_height: int = 0

    @property
    def worker_count(self) -> int:
        """Worker processes to start: as configured, else one per core this process may run on."""
        return self.workers or usable_cores()


#: Tasks the router lets one worker hold at once (one running, one queued behind it).
TASKS_PER_WORKER = 2


def frames_in_flight(cfg: "PipelineConfig") -> int:
    """Frames a busy pipeline holds at once: every worker's tasks, three batches at the inference process
    (one running, one filling, one being answered) and a couple per stream in its decoder and writer.

    By Little's law a ring with fewer slots caps throughput at slots / latency: the first GPU bench ran
    batches of 8 in 16 slots and reached 0.42 of onnxruntime's own throughput.
    """
    batch = cfg.inference.batch_size if cfg.inference else 1
    return TASKS_PER_WORKER * cfg.pipeline.worker_count + 3 * batch + 2 * len(cfg.streams)


def ring_slots(cfg: "PipelineConfig") -> int:
    """The ring's size: `pipeline.slots` when set, else what frames_in_flight() needs (16 at least)."""
    return cfg.pipeline.slots or max(16, frames_in_flight(cfg))


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class StreamConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: str
    input: str  # path, file://, rtsp://, http(s)://, /dev/videoN
    output: str | None = None  # annotated video file
    fps: float = 0.0  # output frame rate; 0: the source's
    codec: str = "mp4v"
    # What to do when the source fails or ends: "never" | "always" | "on-error" | "on-eos".
    # Default: live sources reconnect on error, files end at their end.
    restart: Literal["never", "always", "on-error", "on-eos"] | None = None
    reconnect_max_s: float = 30.0  # the longest wait between reconnect tries (exponential backoff)

    @property
    def restart_policy(self) -> str:
        return self.restart or ("on-error" if is_live(self.input) else "never")


class FilterConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    kind: Literal["python", "wasm", "wasm-module"] = "python"
    stage: Literal["pre", "post"] = "post"
    function: str | None = None  # kind = "python": "package.module:function" or "file.py:function"
    path: str | None = None  # kind = "wasm" / "wasm-module": the .wasm file
    stateful: bool = False
    deadline_ms: int = 50
    memory_mb: int = 64
    allow: list[str] = []  # WASI capabilities granted to a wasm filter
    config: dict[str, Any] = {}  # handed to the filter's init


class InferenceSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    model: str
    adapter: Literal["blazeface", "centerface", "yolo", "raw"] = "raw"
    batch_size: int = 8
    batch_timeout_ms: float = 5.0
    providers: list[str] = []  # empty: best available
    input_size: list[int] = []  # [width, height] for models with symbolic input dims
    score_threshold: float = 0.5
    nms_threshold: float = 0.3
    labels: list[str] = []  # yolo: class names


class ResultsSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    publish: str | None = None  # "tcp://…" (PUB, bound) or a spec like "pub+connect:tcp://…"; topic = stream id
    file: str | None = None  # JSON Lines sink


class MetricsSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    publish: str | None = None  # ZeroMQ PUB endpoint; one JSON snapshot per interval, topic "metrics"
    interval_s: float = 1.0


class ControlSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    http: str | None = None  # "127.0.0.1:9090": /metrics, /health, /streams, previews
    token: str | None = None  # required when bound beyond loopback; or env PIPELESS_TOKEN


class PipelineConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pipeline: PipelineSection = msgspec.field(default_factory=PipelineSection)
    streams: list[StreamConfig] = []
    filters: list[FilterConfig] = []
    inference: InferenceSection | None = None
    results: ResultsSection = msgspec.field(default_factory=ResultsSection)
    metrics: MetricsSection = msgspec.field(default_factory=MetricsSection)
    control: ControlSection = msgspec.field(default_factory=ControlSection)
    base_dir: str = ""  # the config file's folder; set by load(), not read from the file

    def filters_for(self, stage: str) -> list[FilterConfig]:
        return [f for f in self.filters if f.stage == stage]


_LIVE_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


def is_live(source: str) -> bool:
    """Live sources are never waited for: when the ring is full their oldest frame is dropped."""
    return source.startswith(_LIVE_PREFIXES) or source.startswith("/dev/video") or source.isdigit()


def resolve_path(base_dir: str, value: str) -> str:
    """Paths in the config are relative to the config file; URLs and devices pass through."""
    if value.startswith("file://"):
        value = value[len("file://"):]
    elif "://" in value or value.startswith("/dev/") or value.isdigit():
        return value
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))


def _where(msg: str) -> tuple[str, str]:
    """Split msgspec's '... - at `$.a.b[0]`' into a dotted key and the message."""
    match = re.search(r" - at `\$(.*)`$", msg)
    if not match:
        return "", msg
    key = match.group(1).lstrip(".")
    return key, msg[: match.start()]


def _choices(key: str) -> list[str]:
    """The allowed values of a Literal field at a dotted key, to say what was expected."""
    info = msgspec.inspect.type_info(PipelineConfig)
    for part in re.sub(r"\[\d+\]", "", key).split("."):
        while isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.UnionType)):
            info = info.item_type if isinstance(info, msgspec.inspect.ListType) else next(
                t for t in info.types if not isinstance(t, msgspec.inspect.NoneType))
        if not isinstance(info, msgspec.inspect.StructType):
            return []
        info = next((f.type for f in info.fields if f.name == part), None)
        if info is None:
            return []
    if isinstance(info, msgspec.inspect.LiteralType):
        return [str(v) for v in info.values]
    return []


def load(path: str | os.PathLike[str]) -> PipelineConfig:
    """Read, validate and resolve a pipeline.toml; raise ConfigError with one line on any problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    try:
        cfg = msgspec.toml.decode(raw, type=PipelineConfig)
    except msgspec.ValidationError as exc:
        key, msg = _where(str(exc))
        choices = _choices(key)
        if choices:
            msg += f" (expected one of: {', '.join(choices)})"
        raise ConfigError(f"{path}: {key or 'top level'}: {msg}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    cfg.base_dir = str(path.resolve().parent)
    _check(cfg, str(path))
    return cfg


def check_stream(s: StreamConfig, base_dir: str) -> tuple[str, str] | None:
    """Validate one stream and resolve its paths; (key, problem) when it is wrong.

    Shared by the config file and the control API, which adds streams at run time.
    """
    if not s.id or not re.fullmatch(r"[A-Za-z0-9_.-]+", s.id):
        return "id", f"expected letters, digits, '_', '-' or '.', got {s.id!r}"
    if not is_live(s.input):
        s.input = resolve_path(base_dir, s.input)
        if not os.path.isfile(s.input):
            return "input", f"no such file: {s.input}"
    if s.output:
        s.output = resolve_path(base_dir, s.output)
    if len(s.codec) != 4:
        return "codec", f"expected a four-character code like 'mp4v', got {s.codec!r}"
    if s.reconnect_max_s <= 0:
        return "reconnect_max_s", f"expected a positive number of seconds, got {s.reconnect_max_s}"
    return None


def _check(cfg: PipelineConfig, name: str) -> None:
    """Value checks msgspec's types cannot express, with paths resolved against the config's folder."""

    def fail(key: str, msg: str) -> None:
        raise ConfigError(f"{name}: {key}: {msg}")

    p = cfg.pipeline
    if p.workers < 0:
        fail("pipeline.workers", f"expected 0 (one per core) or more, got {p.workers}")
    if p.slots == 1 or p.slots < 0:
        fail("pipeline.slots", f"expected 0 (sized automatically) or at least 2 slots, got {p.slots}")
    if not cfg.streams:
        fail("streams", "expected at least one [[streams]] table")
    seen: set[str] = set()
    for i, s in enumerate(cfg.streams):
        if s.id in seen:
            fail(f"streams[{i}].id", f"duplicate stream id {s.id!r}")
        seen.add(s.id)
        problem = check_stream(s, cfg.base_dir)
        if problem:
            fail(f"streams[{i}].{problem[0]}", problem[1])
    names: set[str] = set()
    for i, f in enumerate(cfg.filters):
        if f.name in names:
            fail(f"filters[{i}].name", f"duplicate filter name {f.name!r}")
        names.add(f.name)
        if f.kind == "python" and not f.function:
            fail(f"filters[{i}].function", "kind = 'python' needs function = 'module:function'")
        if f.kind == "python" and f.function and ":" not in f.function:
            fail(f"filters[{i}].function", f"expected 'module:function', got {f.function!r}")
        if f.kind == "python" and f.function and f.function.split(":")[0].endswith(".py"):
            module, func = f.function.rsplit(":", 1)
            f.function = resolve_path(cfg.base_dir, module) + ":" + func
        if f.kind in ("wasm", "wasm-module"):
            if not f.path:
                fail(f"filters[{i}].path", f"kind = '{f.kind}' needs path = 'file.wasm'")
            f.path = resolve_path(cfg.base_dir, f.path)
            if not os.path.isfile(f.path):
                fail(f"filters[{i}].path", f"no such file: {f.path}")
        if f.deadline_ms <= 0:
            fail(f"filters[{i}].deadline_ms", f"expected a positive number, got {f.deadline_ms}")
        if f.memory_mb <= 0:
            fail(f"filters[{i}].memory_mb", f"expected a positive number, got {f.memory_mb}")
    inf = cfg.inference
    if inf is not None:
        inf.model = resolve_path(cfg.base_dir, inf.model)
        if not os.path.isfile(inf.model):
            fail("inference.model", f"no such file: {inf.model}")
        if inf.batch_size < 1:
            fail("inference.batch_size", f"expected 1 or more, got {inf.batch_size}")
        if inf.batch_timeout_ms < 0:
            fail("inference.batch_timeout_ms", f"expected 0 or more, got {inf.batch_timeout_ms}")
        if inf.input_size and (len(inf.input_size) != 2 or min(inf.input_size) <= 0):
            fail("inference.input_size", f"expected [width, height], got {inf.input_size}")
    r = cfg.results
    if r.file:
        r.file = resolve_path(cfg.base_dir, r.file)
    for key, endpoint in (("results.publish", r.publish), ("metrics.publish", cfg.metrics.publish)):
        if endpoint:
            try:
                parse_spec(endpoint)
            except EndpointError as exc:
                fail(key, f"not a ZeroMQ endpoint: {exc}")
    if cfg.metrics.interval_s <= 0:
        fail("metrics.interval_s", f"expected a positive number of seconds, got {cfg.metrics.interval_s}")
    c = cfg.control
    if c.http:
        host, _, port = c.http.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            fail("control.http", f"expected 'host:port' like '127.0.0.1:9090', got {c.http!r}")
        if host not in ("127.0.0.1", "localhost", "::1", "[::1]") and not (c.token or os.environ.get("PIPELESS_TOKEN")):
            fail("control.token", f"control.http binds {host}, beyond loopback: set control.token or PIPELESS_TOKEN")
