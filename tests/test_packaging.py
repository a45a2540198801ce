"""A normal (non-editable) install carries everything the code reads beside itself.

The code finds its data as `Path(__file__).parent.parent / "models"` and so
on; in a checkout that is the repository, in site-packages it is the
`pipeless/` folder. The wheel must therefore hold those files at the same
places, or the bench, the wasm tools and the demo break outside a checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from tests.conftest import ROOT


def test_the_wheel_holds_the_data_the_code_reads(tmp_path) -> None:
    # Build from the tracked files alone: a stale egg-info in the checkout (an editable install's
    # SOURCES.txt) would otherwise add files the configuration itself does not ship.
    src = tmp_path / "src"
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
    for rel in filter(None, tracked.decode().split("\0")):
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(src)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(tmp_path.glob("pipeless-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "pipeless/workers/wasm/wit.json",                # the ABI check and the wasm tools
        "pipeless/samples/carphone.mp4",                 # the bench and the demo
        *(f"pipeless/models/{p.name}" for p in (ROOT / "models").iterdir()),  # models with their licences
        *(f"pipeless/wit/{p.name}" for p in (ROOT / "wit").glob("*.wit")),    # `filter new|build`
        *(f"pipeless/filters/c/{p.name}" for p in (ROOT / "filters" / "c").glob("*.wasm")),  # the demo's components
        *(f"pipeless/filters/rust/{p.name}" for p in (ROOT / "filters" / "rust").glob("*.wasm")),
        "pipeless/filters/c/pipeless.h",                 # what a new C filter includes
    }
    assert not expected - names, sorted(expected - names)
    assert not any(n.startswith(("tests/", "pipeless/tests/")) for n in names)
