"""Open an ONNX Runtime session on the best execution provider that really works.

"Available" in `onnxruntime.get_available_providers()` only means the wheel
was built with a provider, not that its libraries (CUDA, cuDNN, TensorRT)
load on this machine. Asking for a provider that cannot load makes ONNX
Runtime print a screenful of errors and silently run on the CPU. So we try
the providers in order of preference, keep ONNX Runtime quiet while doing it,
and report the provider actually in use, with one log line when a requested
one had to be dropped.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import re
import weakref

import onnxruntime as ort

__all__ = ["ModelLoadError", "NamedModel", "open_session", "describe", "model_name", "PREFERENCE"]

log = logging.getLogger("pipeless.inference")

#: Fastest first. TensorRT builds an engine per input shape on first use
#: (slow start, fast steady state); CUDA is the safe GPU choice; CPU always loads.
PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
CPU = "CPUExecutionProvider"

# ONNX Runtime severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal.
_RUN_SEVERITY = 3  # keep errors at run time, drop the initializer/unused-node warnings
_LOAD_SEVERITY = 4  # while probing providers: their load failures are expected, we report them ourselves

_ALIASES = {"trt": "TensorrtExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
            "cuda": "CUDAExecutionProvider", "gpu": "CUDAExecutionProvider", "cpu": CPU}

# Names of models opened from bytes (centerface's rewritten graph), for describe().
_names: "weakref.WeakKeyDictionary[ort.InferenceSession, str]" = weakref.WeakKeyDictionary()


class ModelLoadError(Exception):
    """One line, naming the model, saying why it cannot be loaded; printed without a traceback."""


class NamedModel(bytes):
    """A serialized model that remembers the file it came from.

    Adapters that rewrite a model (centerface) hand bytes to open_session;
    this keeps the path attached so errors and describe() still name the
    file, without callers having to pass it separately.
    """

    source: str

    def __new__(cls, data: bytes, source: str) -> "NamedModel":
        obj = super().__new__(cls, data)
        obj.source = source
        return obj


def _model_errors() -> tuple[type[BaseException], ...]:
    """ONNX Runtime's exception types meaning 'the model itself is bad', whatever the provider."""
    state = ort.capi.onnxruntime_pybind11_state
    names = ("InvalidProtobuf", "NoSuchFile", "InvalidGraph")
    return tuple(getattr(state, n) for n in names if hasattr(state, n))


def _reason(exc: BaseException) -> str:
    """ORT's message without its '[ONNXRuntimeError] : 7 : INVALID_PROTOBUF :' prefix, one line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*", "", text)


def _resolve(requested: list[str]) -> list[str]:
    """Requested names (aliases like 'cuda' allowed) -> available provider names, CPU last.

    Unknown or not-built-in providers are dropped with a warning instead of
    handed to ONNX Runtime, which would print a UserWarning plus an 'EP Error'
    block and then fall back anyway.
    """
    available = ort.get_available_providers()
    if not requested:
        chosen = [p for p in PREFERENCE if p in available]
    else:
        chosen = []
        for name in requested:
            full = _ALIASES.get(name.lower(), name)
            match = next((a for a in available if a.lower() in (full.lower(), full.lower() + "executionprovider")), None)
            if match is None:
                log.warning("inference: provider %r is not available in this onnxruntime build "
                            "(available: %s); skipping it", name, ", ".join(available))
            elif match not in chosen:
                chosen.append(match)
    if CPU in chosen:
        chosen.remove(CPU)
    chosen.append(CPU)  # the fallback that always loads
    return chosen


@functools.cache
def _preload_gpu_libraries() -> None:
    """Load CUDA and cuDNN from the `nvidia-*` wheels (`pip install "onnxruntime-gpu[cuda,cudnn]"`), once.

    ONNX Runtime's CUDA provider looks for those libraries only on the loader's path, which pip never
    sets: without this, a GPU installed the documented way silently runs on the CPU unless the user
    exports LD_LIBRARY_PATH. A machine with the toolkit installed system-wide loses nothing.
    """
    if not hasattr(ort, "preload_dlls"):
        return
    try:
        with _quiet():
            ort.preload_dlls(msvc=False)
    except Exception as exc:  # missing wheels or a mismatched CUDA: the session probe below reports it
        log.debug("inference: preloading CUDA libraries failed: %s", exc)


@contextlib.contextmanager
def _quiet():
    """Silence ORT while a session is created: C++ logger to fatal-only, Python's 'EP Error' prints swallowed."""
    ort.set_default_logger_severity(_LOAD_SEVERITY)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        ort.set_default_logger_severity(_RUN_SEVERITY)


def open_session(model: str | bytes, requested: list[str], *, name: str = "") -> tuple[ort.InferenceSession, str]:
    """Create an InferenceSession on the first provider of `requested` (or the best available) that loads.

    Returns the session and the provider really in use (session.get_providers()[0]).
    A GPU provider that fails to load is dropped and the next one tried, down
    to the CPU. Raises ModelLoadError (one line, naming the model) when the
    model itself cannot be loaded. `name` labels the model in messages and in
    describe(); it defaults to the path, or a NamedModel's source.
    """
    label = name or (model if isinstance(model, str) else getattr(model, "source", "") or "<in-memory model>")
    if isinstance(model, str) and not os.path.isfile(model):
        raise ModelLoadError(f"{label}: cannot load model: no such file")
    providers = _resolve(requested)
    wanted = providers[0]
    if wanted != CPU:
        _preload_gpu_libraries()
    so = ort.SessionOptions()
    # onnxruntime spin-waits after every run by default: 41 ms of CPU per 1.6 ms BlazeFace run on
    # 2 cores (measured by the bench), stolen from decode and the workers.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = _RUN_SEVERITY
    model_errors = _model_errors()
    last: BaseException | None = None
    session = None
    for i in range(len(providers)):
        attempt = providers[i:]
        try:
            with _quiet():
                session = ort.InferenceSession(model, sess_options=so, providers=attempt)
            break
        except model_errors as exc:
            raise ModelLoadError(f"{label}: not a loadable ONNX model: {_reason(exc)}") from None
        except Exception as exc:  # a provider that failed to initialise: try the next one
            last = exc
    if session is None:
        raise ModelLoadError(f"{label}: not a loadable ONNX model: {_reason(last) if last else 'unknown error'}")
    in_use = session.get_providers()[0]
    if in_use != wanted:
        # Only worth a warning when the user asked for that provider; on auto
        # it is routine (e.g. CUDA present but TensorRT not installed).
        (log.warning if requested else log.debug)("inference: %s could not be loaded (its libraries are missing or no device is present); "
                    "running on %s", wanted, in_use)
    if not isinstance(model, str) or name:
        _names[session] = label
    return session, in_use


def model_name(session: ort.InferenceSession) -> str:
    """The path (or the name given to open_session) a session was created from, for messages."""
    return _names.get(session) or getattr(session, "_model_path", None) or "<in-memory model>"


def _dims(shape: list) -> str:
    return "x".join(str(d) if isinstance(d, int) and d >= 0 else (str(d) if d else "?") for d in shape)


def describe(session: ort.InferenceSession, provider: str, *, spec=None) -> str:
    """One log line: model file, provider, input shape and batching, e.g.

    'inference: blazeface-front-128.onnx on CPUExecutionProvider (input 1x128x128x3, fixed batch 1)'.
    With `spec` (the ModelInput in use) symbolic height/width are shown as chosen.
    """
    name = model_name(session)
    inp = session.get_inputs()[0]
    shape = list(inp.shape)
    batch = shape[0] if shape else None
    if spec is not None and len(shape) == 4:
        hw = (1, 2) if spec.layout == "NHWC" else (2, 3)
        shape[hw[0]], shape[hw[1]] = spec.height, spec.width
    if isinstance(batch, int) and batch > 0:
        batching = f"fixed batch {batch}"
    else:
        batching = "dynamic batch"
    return f"inference: {os.path.basename(name)} on {provider} (input {_dims(shape)}, {batching})"
