"""The host ABI as data: every type and function the host implements, mirroring wit/.

The lean call path (vals.py) compiles its byte-level readers and writers from
these descriptions, the linker registers exactly these functions, and
tests/test_wasm_abi.py checks every name, parameter, field and case here
against `wasm-tools component wit --json wit/`, so host and WIT cannot drift
apart silently.
"""

from __future__ import annotations

from dataclasses import dataclass

PACKAGE = "pipeless:filter@0.1.0"


def iface(name: str) -> str:
    """'frame' -> 'pipeless:filter/frame@0.1.0' (the instance name a component imports)."""
    ns, rest = PACKAGE.split(":", 1)
    pkg, version = rest.split("@", 1)
    return f"{ns}:{pkg}/{name}@{version}"


@dataclass(frozen=True)
class Prim:
    name: str  # bool s8 u8 s16 u16 s32 u32 s64 u64 f32 f64 string


@dataclass(frozen=True)
class Record:
    name: str
    fields: tuple[tuple[str, "Type"], ...]


@dataclass(frozen=True)
class Enum:
    name: str
    cases: tuple[str, ...]


@dataclass(frozen=True)
class Variant:
    name: str
    cases: tuple[tuple[str, "Type | None"], ...]


@dataclass(frozen=True)
class ListOf:
    element: "Type"


@dataclass(frozen=True)
class Option:
    inner: "Type"


@dataclass(frozen=True)
class Result:
    ok: "Type | None"
    err: "Type | None"


@dataclass(frozen=True)
class Borrow:
    resource: str


Type = Prim | Record | Enum | Variant | ListOf | Option | Result | Borrow

BOOL, U8, S32, U32, U64, F32, F64, STRING = (Prim(n) for n in ("bool", "u8", "s32", "u32", "u64", "f32", "f64", "string"))

# --- types ---
POINT = Record("point", (("x", S32), ("y", S32)))
RECT = Record("rect", (("x", S32), ("y", S32), ("width", S32), ("height", S32)))
COLOR = Record("color", (("r", U8), ("g", U8), ("b", U8)))
BOX = Record("box", (("x1", F32), ("y1", F32), ("x2", F32), ("y2", F32)))
LOG_LEVEL = Enum("log-level", ("trace", "debug", "info", "warn", "error"))
FILTER_ERROR = Variant("filter-error", (("failed", STRING), ("fatal", STRING)))

# --- frame ---
FRAME = Borrow("frame")
FRAME_INFO = Record(
    "frame-info",
    (
        ("width", U32),
        ("height", U32),
        ("channels", U32),
        ("stream-id", STRING),
        ("index", U64),
        ("pts", F64),
        ("has-model-input", BOOL),
    ),
)
INPUT_TRANSFORM = Record("input-transform", (("scale-x", F32), ("scale-y", F32), ("pad-x", F32), ("pad-y", F32)))
COLOR_CONVERSION = Enum("color-conversion", ("swap-rb", "grayscale", "invert"))
BOX_SHAPE = Record("box-shape", (("rect", RECT), ("color", COLOR), ("thickness", S32), ("label", STRING)))
LINE_SHAPE = Record("line-shape", (("start", POINT), ("end", POINT), ("color", COLOR), ("thickness", S32)))
CIRCLE_SHAPE = Record("circle-shape", (("center", POINT), ("radius", S32), ("color", COLOR), ("thickness", S32)))
TEXT_SHAPE = Record(
    "text-shape", (("origin", POINT), ("text", STRING), ("color", COLOR), ("scale", F32), ("thickness", S32))
)

# --- detections ---
DETECTION = Record("detection", (("label", STRING), ("score", F32), ("box", BOX)))


@dataclass(frozen=True)
class Func:
    name: str  # as imported: "[method]frame.blur", "emit", ...
    params: tuple[tuple[str, Type], ...]
    result: Type | None = None


def _m(name: str, *params: tuple[str, Type], result: Type | None = None) -> Func:
    return Func(f"[method]frame.{name}", (("self", FRAME),) + params, result)


IMPORTS: dict[str, tuple[Func, ...]] = {
    iface("frame"): (
        _m("width", result=U32),
        _m("height", result=U32),
        _m("channels", result=U32),
        _m("stream-id", result=STRING),
        _m("index", result=U64),
        _m("pts", result=F64),
        _m("info", result=FRAME_INFO),
        _m("prepare-input", ("region", Option(RECT)), result=INPUT_TRANSFORM),
        _m("convert-color", ("region", Option(RECT)), ("conversion", COLOR_CONVERSION)),
        _m("blur", ("regions", ListOf(RECT)), ("kernel", U32)),
        _m("pixelate", ("regions", ListOf(RECT)), ("block", U32)),
        _m("fill", ("regions", ListOf(RECT)), ("color", COLOR)),
        _m("copy-region", ("src", RECT), ("dst", RECT)),
        _m("draw-boxes", ("boxes", ListOf(BOX_SHAPE))),
        _m("draw-lines", ("lines", ListOf(LINE_SHAPE))),
        _m("draw-circles", ("circles", ListOf(CIRCLE_SHAPE))),
        _m("draw-texts", ("texts", ListOf(TEXT_SHAPE))),
        _m("read-region", ("region", RECT), result=ListOf(U8)),
        _m("write-region", ("region", RECT), ("pixels", ListOf(U8))),
    ),
    iface("detections"): (
        Func("get-detections", (("frame", FRAME),), ListOf(DETECTION)),
        Func("set-detections", (("frame", FRAME), ("detections", ListOf(DETECTION)))),
    ),
    iface("output"): (
        Func("emit", (("json", STRING),)),
        Func("log", (("level", LOG_LEVEL), ("message", STRING))),
    ),
}

# Interfaces with types only (still imported by every component).
TYPE_ONLY_IMPORTS = (iface("types"),)
RESOURCES = {iface("frame"): ("frame",)}

EXPORTS: tuple[Func, ...] = (
    Func("init", (("config", STRING),), Result(None, STRING)),
    Func("process", (("frame", FRAME),), Result(None, FILTER_ERROR)),
)

WORLD = "filter"


NAMED_TYPES: dict[str, Record | Enum | Variant] = {
    t.name: t
    for t in (
        POINT, RECT, COLOR, BOX, LOG_LEVEL, FILTER_ERROR, FRAME_INFO, INPUT_TRANSFORM,
        COLOR_CONVERSION, BOX_SHAPE, LINE_SHAPE, CIRCLE_SHAPE, TEXT_SHAPE, DETECTION,
    )
}
