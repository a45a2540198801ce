"""`pipeless-orch filter new | build | run`: scaffold, build and run filters in every language we can build here.

The C round trip always runs (clang + wasm-ld + wasm-tools, under a second).
Python and JS builds take ~10 s each and need componentize-py / ComponentizeJS:
those tests skip, saying what to install, when the toolchain is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeless.orchestrator import filter_cli

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, capsys=None) -> tuple[int, str, str]:
    rc = filter_cli.main(list(args))
    out, err = capsys.readouterr() if capsys else ("", "")
    return rc, out, err


def toolchain(lang: str) -> str | None:
    """None when `lang` can be built here, else why not (the one-line error `filter build` gives)."""
    try:
        if lang == "c":
            filter_cli.c_compiler()
            filter_cli.wasm_tools()
        elif lang == "python":
            filter_cli.componentize_py()
        elif lang == "js":
            filter_cli.componentize_js(ROOT / "filters" / "js")
        elif lang == "rust":
            filter_cli.rustc_wasm()
            filter_cli.wasm_tools()
    except filter_cli.CliError as exc:
        return str(exc)
    return None


def needs(lang: str):
    why = toolchain(lang)
    return pytest.mark.skipif(why is not None, reason=f"{lang} toolchain missing: {why}")


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Builds in these tests never read or fill the user's shared cache, except where a test asks."""
    monkeypatch.setenv("PIPELESS_FILTER_CACHE", str(tmp_path_factory.mktemp("filter-cache")))


def component_world(wasm: Path) -> str:
    return subprocess.run(["wasm-tools", "component", "wit", str(wasm)], capture_output=True, text=True,
                          check=True).stdout


# ---------------------------------------------------------------------------
# new


@pytest.mark.parametrize("lang,source", [("c", "hello.c"), ("rust", "hello.rs"), ("python", "hello.py"), ("js", "hello.js")])
def test_new_writes_a_project_against_the_wit(tmp_path, capsys, lang, source):
    rc, out, err = cli("new", "hello", "--lang", lang, "--dir", str(tmp_path / "p"), capsys=capsys)
    assert rc == 0, err
    p = tmp_path / "p"
    assert (p / source).is_file()
    assert sorted(f.name for f in (p / "wit").iterdir()) == sorted(f.name for f in (ROOT / "wit").glob("*.wit"))
    assert (p / "wit" / "world.wit").read_text() == (ROOT / "wit" / "world.wit").read_text()
    recipe = p / ("package.json" if lang == "js" else "build.sh")
    assert recipe.is_file() and "hello" in recipe.read_text()
    assert "build" in out


def test_new_defaults_to_a_folder_named_after_the_filter(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli("new", "stamp", "--lang", "c", capsys=capsys)
    assert rc == 0, err
    assert (tmp_path / "stamp" / "stamp.c").is_file()
    assert (tmp_path / "stamp" / "pipeless.h").is_file() and (tmp_path / "stamp" / "pipeless.c").is_file()


@pytest.mark.parametrize("args,expected", [
    (["new", "9lives", "--lang", "c"], "filter name '9lives'"),
    (["new", "json", "--lang", "python"], "filter name 'json' is taken"),
    (["new", "filter", "--lang", "js"], "filter name 'filter' is taken"),
])
def test_new_rejects_bad_names_in_one_line(tmp_path, capsys, args, expected):
    rc, _, err = cli(*args, "--dir", str(tmp_path / "x"), capsys=capsys)
    assert rc == 2
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_new_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    rc, _, err = cli("new", "hello", "--lang", "c", "--dir", str(tmp_path), capsys=capsys)
    assert rc == 2 and str(tmp_path) in err and "not empty" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


# ---------------------------------------------------------------------------
# build


@needs("c")
def test_build_c_then_cached(tmp_path, capsys):
    p = tmp_path / "hello"
    assert cli("new", "hello", "--lang", "c", "--dir", str(p), capsys=capsys)[0] == 0
    rc, out, err = cli("build", str(p), capsys=capsys)
    assert rc == 0, err
    wasm = p / "build" / "hello.wasm"
    assert "built" in out and wasm.is_file()
    world = component_world(wasm)
    assert "export init: func(config: string) -> result<_, string>;" in world
    assert "export process: func(frame: borrow<frame>) -> result<_, filter-error>;" in world
    assert "wasi:" not in world  # a C filter needs no WASI at all

    rc, out, _ = cli("build", str(p), capsys=capsys)
    assert rc == 0 and "up to date" in out

    # another checkout of the same sources: restored from the shared cache, not rebuilt
    q = tmp_path / "copy"
    shutil.copytree(p, q, ignore=shutil.ignore_patterns("build"))
    rc, out, _ = cli("build", str(q), capsys=capsys)
    assert rc == 0 and "restored from the build cache" in out
    assert (q / "build" / "hello.wasm").read_bytes() == wasm.read_bytes()

    # an edit rebuilds
    src = p / "hello.c"
    src.write_text(src.read_text().replace("255, 0, 255", "0, 0, 255"))
    rc, out, _ = cli("build", str(p), capsys=capsys)
    assert rc == 0 and "built" in out


@pytest.mark.parametrize("lang", ["c", "rust"])
def test_build_recipe_is_runnable_without_pipeless(tmp_path, capsys, lang):
    if toolchain(lang):
        pytest.skip(f"{lang} toolchain missing: {toolchain(lang)}")
    p = tmp_path / "hello"
    cli("new", "hello", "--lang", lang, "--dir", str(p), capsys=capsys)
    res = subprocess.run(["sh", str(p / "build.sh")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "export process" in component_world(p / "build" / "hello.wasm")


@needs("rust")
def test_build_rust_scaffold(tmp_path, capsys):
    p = tmp_path / "rsfilter"
    cli("new", "rsfilter", "--lang", "rust", "--dir", str(p), capsys=capsys)
    assert (p / "pipeless.rs").read_text() == (ROOT / "filters" / "rust" / "pipeless.rs").read_text()
    rc, out, err = cli("build", str(p), capsys=capsys)
    assert rc == 0, err
    world = component_world(p / "build" / "rsfilter.wasm")
    assert "export process: func(frame: borrow<frame>) -> result<_, filter-error>;" in world and "wasi:" not in world
    (p / "rsfilter.rs").write_text((p / "rsfilter.rs").read_text().replace("Ok(())\n}\n", "Ok(()\n}\n"))
    rc, _, err = cli("build", str(p), capsys=capsys)
    assert rc == 2 and err.count("\n") == 1 and "rsfilter.rs" in err and "rustc failed" in err, err


@needs("c")
def test_build_c_compile_error_is_one_line_with_the_log(tmp_path, capsys):
    p = tmp_path / "broken"
    cli("new", "broken", "--lang", "c", "--dir", str(p), capsys=capsys)
    (p / "broken.c").write_text((p / "broken.c").read_text().replace("return PL_OK;", "return PL_OK"))
    rc, _, err = cli("build", str(p), capsys=capsys)
    assert rc == 2 and err.count("\n") == 1, err
    assert "broken.c" in err and "clang failed" in err and "error" in err
    log = p / "build" / "broken.log"
    assert str(log) in err and "expected ';'" in log.read_text()


def test_build_names_what_to_install_when_a_toolchain_is_missing(tmp_path, capsys, monkeypatch):
    for lang in ("python", "js", "c"):
        cli("new", "hello", "--lang", lang, "--dir", str(tmp_path / lang), capsys=capsys)
    real_which = filter_cli._which
    monkeypatch.setattr(filter_cli, "_which", lambda n: None if n in ("componentize-py", "node", "clang") else real_which(n))
    monkeypatch.setattr(filter_cli.shutil, "which", lambda n, *a, **k: None)
    monkeypatch.setitem(sys.modules, "ziglang", None)  # the C fallback compiler: not importable either
    expected = {
        "python": "componentize-py is not installed: pip install componentize-py",
        "js": "node is not installed: install Node.js",
        "c": "clang with the wasm32 target is not installed: apt-get install clang lld",
    }
    for lang, message in expected.items():
        rc, _, err = cli("build", str(tmp_path / lang), capsys=capsys)
        assert rc == 2 and err.count("\n") == 1 and message in err, (lang, err)


def test_build_js_without_componentize_js_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    cli("new", "hello", "--lang", "js", "--dir", str(tmp_path / "p"), capsys=capsys)
    monkeypatch.setattr(filter_cli, "JS_DIR", tmp_path / "nowhere")
    monkeypatch.setattr(filter_cli.shutil, "which", lambda n, *a, **k: "/usr/bin/node" if n == "node" else None)
    rc, _, err = cli("build", str(tmp_path / "p"), capsys=capsys)
    assert rc == 2 and "componentize-js is not installed" in err and "npm" in err


def test_build_errors_name_the_path(tmp_path, capsys):
    rc, _, err = cli("build", str(tmp_path / "missing"), capsys=capsys)
    assert rc == 2 and f"{tmp_path / 'missing'}: no such file or folder" in err
    (tmp_path / "empty").mkdir()
    rc, _, err = cli("build", str(tmp_path / "empty"), capsys=capsys)
    assert rc == 2 and "no filter found" in err and str(tmp_path / "empty") in err


@needs("c")
def test_build_one_file_of_a_folder_of_filters(tmp_path, capsys):
    """pipeless's filters/c holds several filters: build one of them by naming its file."""
    for f in ("pipeless.h", "pipeless.c", "blur_faces.c", "draw_detections.c"):
        shutil.copy(ROOT / "filters" / "c" / f, tmp_path / f)
    rc, out, err = cli("build", str(tmp_path / "blur_faces.c"), capsys=capsys)
    assert rc == 0, err
    assert (tmp_path / "build" / "blur_faces.wasm").is_file() and not (tmp_path / "build" / "draw_detections.wasm").exists()
    rc, out, err = cli("build", str(tmp_path), capsys=capsys)
    assert rc == 0 and (tmp_path / "build" / "draw_detections.wasm").is_file()


@needs("python")
def test_build_python_scaffold(tmp_path, capsys):
    p = tmp_path / "pyfilter"
    cli("new", "pyfilter", "--lang", "python", "--dir", str(p), capsys=capsys)
    rc, out, err = cli("build", str(p), capsys=capsys)
    assert rc == 0, err
    world = component_world(p / "build" / "pyfilter.wasm")
    assert "export process: func(frame: borrow<frame>) -> result<_, filter-error>;" in world


@needs("python")
def test_build_python_syntax_error_is_one_line(tmp_path, capsys):
    p = tmp_path / "bad"
    cli("new", "bad", "--lang", "python", "--dir", str(p), capsys=capsys)
    (p / "bad.py").write_text((p / "bad.py").read_text().replace("def init(self, config: str) -> None:", "def init(self, config: str) -> None"))
    rc, _, err = cli("build", str(p), capsys=capsys)
    assert rc == 2 and err.count("\n") == 1 and "bad.py" in err and "componentize-py failed" in err, err


@needs("js")
def test_build_js_scaffold(tmp_path, capsys):
    p = tmp_path / "jsfilter"
    cli("new", "jsfilter", "--lang", "js", "--dir", str(p), capsys=capsys)
    rc, out, err = cli("build", str(p), capsys=capsys)
    assert rc == 0, err
    world = component_world(p / "build" / "jsfilter.wasm")
    assert "export process: func(frame: borrow<frame>) -> result<_, filter-error>;" in world
    assert "wasi:http" not in world  # fetch is disabled: no filter is granted network access


# ---------------------------------------------------------------------------
# run: config / detections parsing (the host round trip is in the tests below)


def test_detections_accept_a_file_inline_json_and_box_objects(tmp_path):
    f = tmp_path / "d.json"
    f.write_text(json.dumps([{"label": "face", "score": 0.9, "box": [1, 2, 30, 40]}]))
    assert filter_cli._load_detections(str(f))[0].box == [1.0, 2.0, 30.0, 40.0]
    d = filter_cli._load_detections('{"detections": [{"box": {"x1": 1, "y1": 2, "x2": 3, "y2": 4}}]}')
    assert d[0].label == "object" and d[0].score == 1.0 and d[0].box == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(filter_cli.CliError, match="detection 0"):
        filter_cli._load_detections('[{"box": [1, 2]}]')
    with pytest.raises(filter_cli.CliError, match="not valid JSON"):
        filter_cli._load_detections("[{")


def test_config_accepts_json_toml_and_inline(tmp_path):
    (tmp_path / "c.toml").write_text("kernel = 9\n")
    (tmp_path / "c.json").write_text('{"kernel": 7}')
    assert filter_cli._load_config(str(tmp_path / "c.toml")) == {"kernel": 9}
    assert filter_cli._load_config(str(tmp_path / "c.json")) == {"kernel": 7}
    assert filter_cli._load_config('{"kernel": 5}') == {"kernel": 5}
    with pytest.raises(filter_cli.CliError, match="c.toml: not valid TOML"):
        (tmp_path / "c.toml").write_text("kernel = \n")
        filter_cli._load_config(str(tmp_path / "c.toml"))
    with pytest.raises(filter_cli.CliError, match="no such file, and not inline JSON"):
        filter_cli._load_config(str(tmp_path / "nope.toml"))


# ---------------------------------------------------------------------------
# run: new -> build -> run, in every language the machine can build

FACE = '[{"label": "face", "score": 0.93, "box": [60.4, 28.7, 116.2, 100.9]}]'


@pytest.fixture(scope="module")
def carphone_png(tmp_path_factory):
    import cv2

    cap = cv2.VideoCapture(str(ROOT / "samples" / "carphone.mp4"))
    ok, img = cap.read()
    cap.release()
    assert ok, "cannot read samples/carphone.mp4"
    path = tmp_path_factory.mktemp("img") / "carphone.png"
    cv2.imwrite(str(path), img)
    return path


def _host_missing() -> str | None:
    try:
        import pipeless.workers.wasm.component  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


@pytest.mark.skipif(_host_missing() is not None, reason=f"the wasm host is not in this build: {_host_missing()}")
@pytest.mark.parametrize("lang", ["c", "rust", "python", "js"])
def test_new_build_run_round_trip(tmp_path, capsys, carphone_png, lang):
    import cv2

    why = toolchain(lang)
    if why:
        pytest.skip(f"{lang} toolchain missing: {why}")
    p = tmp_path / "stamp"
    assert cli("new", "stamp", "--lang", lang, "--dir", str(p), capsys=capsys)[0] == 0
    rc, _, err = cli("build", str(p), capsys=capsys)
    assert rc == 0, err
    out = tmp_path / "out.png"
    rc, stdout, err = cli("run", str(p / "build" / "stamp.wasm"), "--image", str(carphone_png), "--detections", FACE,
                          "--config", '{"thickness": 1}', "--out", str(out), capsys=capsys)
    assert rc == 0, err
    assert json.loads(stdout) == {"detections": 1}
    assert f"-> {out}" in err and "Traceback" not in err
    before, after = cv2.imread(str(carphone_png)), cv2.imread(str(out))
    changed = (before != after).any(axis=2)
    assert 500 < changed.sum() < 5000  # a 1-pixel box with its tag, and "frame 0"
    assert changed[0:20, 0:60].any()  # the stamp, top-left
    assert changed[28:100, 60].all()  # the box's left edge: rect (60, 28, 56, 72)
    # every language's scaffold draws the very same picture
    if lang != "c" and toolchain("c") is None:
        q = tmp_path / "c"
        cli("new", "stamp", "--lang", "c", "--dir", str(q), capsys=capsys)
        cli("build", str(q), capsys=capsys)
        ref = tmp_path / "ref.png"
        rc, _, err = cli("run", str(q / "build" / "stamp.wasm"), "--image", str(carphone_png), "--detections", FACE,
                         "--config", '{"thickness": 1}', "--out", str(ref), capsys=capsys)
        assert rc == 0, err
        assert (cv2.imread(str(ref)) == after).all(), f"the {lang} scaffold draws differently from the C one"


@pytest.mark.skipif(_host_missing() is not None, reason="the wasm host is not in this build")
@needs("c")
def test_run_errors_are_one_line(tmp_path, capsys, carphone_png):
    p = tmp_path / "stamp"
    cli("new", "stamp", "--lang", "c", "--dir", str(p), capsys=capsys)
    cli("build", str(p), capsys=capsys)
    wasm = p / "build" / "stamp.wasm"
    cases = [
        ([str(tmp_path / "nope.wasm"), "--image", str(carphone_png)], 2, "nope.wasm: no such file"),
        ([str(wasm), "--image", str(tmp_path / "nope.png")], 2, "nope.png: no such image"),
        ([str(wasm), "--image", str(p / "stamp.c")], 2, "stamp.c: not an image OpenCV can read"),
        ([str(p / "stamp.c"), "--image", str(carphone_png)], 2, "stamp.c: not a WebAssembly file"),
        ([str(wasm), "--image", str(carphone_png), "--config", '{"thickness": 0}'], 2, "init failed: thickness must be 1..64"),
        ([str(wasm), "--image", str(carphone_png), "--detections", "[{]"], 2, "--detections: not valid JSON"),
        # a box the host refuses (beyond +-2^24): the frame fails, with the host's reason
        ([str(wasm), "--image", str(carphone_png), "--detections", '[{"box": [-1e9, -1e9, 1e9, 1e9]}]'], 1,
         "the frame failed (host-call)"),
    ]
    for args, code, message in cases:
        rc, out, err = cli("run", *args, "--out", str(tmp_path / "o.png"), capsys=capsys)
        assert rc == code and message in err, (args, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.skipif(_host_missing() is not None, reason="the wasm host is not in this build")
@needs("python")
def test_run_a_component_built_with_wasi_needs_a_grant(tmp_path, capsys, carphone_png):
    p = tmp_path / "chatty"
    cli("new", "chatty", "--lang", "python", "--dir", str(p), capsys=capsys)
    assert cli("build", "--wasi", str(p), capsys=capsys)[0] == 0
    wasm = p / "build" / "chatty.wasm"
    rc, _, err = cli("run", str(wasm), "--image", str(carphone_png), "--out", str(tmp_path / "o.png"), capsys=capsys)
    assert rc == 2 and "imports WASI" in err and "--allow" in err and err.count("\n") == 1, err
    rc, out, err = cli("run", str(wasm), "--image", str(carphone_png), "--allow", "stderr",
                       "--out", str(tmp_path / "o.png"), capsys=capsys)
    assert rc == 0 and json.loads(out) == {"detections": 0}, err
