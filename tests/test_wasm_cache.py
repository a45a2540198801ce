"""Compiled code is cached on disk: a second load deserializes instead of compiling."""

from __future__ import annotations

import pytest

from pipeless.workers.filters.registry import build_filter
from pipeless.workers.frame import Frame
from pipeless.workers.wasm import engine
from pipeless.workers.wasm.testing import component, config, frames


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELESS_WASM_CACHE", str(tmp_path))
    engine.forget_memory_cache()
    yield tmp_path
    engine.forget_memory_cache()


def test_second_load_uses_the_disk_cache_without_compiling(cache):
    path = component("c", "draw_detections")
    first = engine.load(path, "component")
    assert first.source == "compiled"
    assert first.cache_file is not None and first.cache_file.parent == cache and first.cache_file.is_file()
    engine.forget_memory_cache()  # as a new worker process would start
    compiled_before = engine.stats["compiled"]
    second = engine.load(path, "component")
    assert second.source == "disk" and second.cache_file == first.cache_file
    assert engine.stats["compiled"] == compiled_before
    # and the deserialized code really runs
    build_filter(config("draw", path)).process(Frame(frames(1)[0], "cam", 0, 0.0))
    # a rebuilt instance in the same process does not even touch the disk
    assert engine.load(path, "component").source == "memory"


def test_the_key_covers_content_and_engine_settings(cache, tmp_path):
    a = component("c", "blur_faces").read_bytes()
    assert engine.cache_key(a, "component") != engine.cache_key(a + b"\0", "component")
    assert engine.cache_key(a, "component") != engine.cache_key(a, "module")


def test_a_corrupt_cache_file_is_recompiled_and_replaced(cache):
    path = component("rust", "blur_faces")
    first = engine.load(path, "component")
    first.cache_file.write_bytes(b"not a compiled artefact")
    engine.forget_memory_cache()
    again = engine.load(path, "component")
    assert again.source == "compiled"
    engine.forget_memory_cache()
    assert engine.load(path, "component").source == "disk"
