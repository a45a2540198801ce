"""Hostile guests fail THEIR frame with the right kind, and the next frame runs on a rebuilt instance.

The guests (filters/c/hostile/*.c, built and committed) misbehave on even
frame indexes and behave on odd ones.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from pipeless.protocol.messages import Detection
from pipeless.workers.filters.base import FilterError
from pipeless.workers.filters.chain import FilterChain
from pipeless.workers.filters.registry import build_filter
from pipeless.workers.frame import Frame
from pipeless.workers.wasm import memory
from pipeless.workers.wasm.testing import component, config, frames

CASES = [
    ("loop", "deadline", "deadline exceeded"),
    ("alloc", "memory", "memory cap"),
    ("trap", "trap", "unreachable"),
    ("badcall", "host-call", "read-region: rect (172, 0, 16, 16) is not inside"),
    ("keepborrow", "trap", "borrow"),
]


@pytest.fixture(scope="module")
def img():
    return frames(1)[0]


@pytest.mark.parametrize("guest,kind,message", CASES, ids=[c[0] for c in CASES])
def test_hostile_guest_fails_its_frame_and_the_next_frame_runs(guest, kind, message, img):
    flt = build_filter(config(guest, component("c", f"hostile/{guest}"), deadline_ms=40, memory_mb=8))
    for round_ in range(2):
        t0 = time.perf_counter()
        with pytest.raises(FilterError) as err:
            flt.process(Frame(img.copy(), "cam", 2 * round_, 0.0))
        assert err.value.kind == kind, str(err.value)
        assert message in str(err.value)
        if guest == "loop":  # stopped close to its deadline, not much later
            assert time.perf_counter() - t0 < 0.040 + 0.5
        flt.process(Frame(img.copy(), "cam", 2 * round_ + 1, 0.0))  # fine, on a fresh instance
        assert flt.rebuilds == round_ + 1
    flt.close()


def test_a_hostile_filter_does_not_stop_the_chain(img):
    chain = FilterChain([
        build_filter(config("trap", component("c", "hostile/trap"))),
        build_filter(config("blur", component("c", "blur_faces"), config={"kernel": 15})),
    ])
    frame = Frame(img.copy(), "cam", 0, 0.0, detections=[Detection("face", 0.9, [50.0, 22.0, 120.0, 110.0])])
    failures = chain.run(frame)
    assert [(f.filter, f.kind) for f in failures] == [("trap", "trap")]
    assert not np.array_equal(frame.image, img)  # the next filter still ran


def test_memory_cap_is_per_instance_and_released(img):
    before = memory.live_memories()
    flt = build_filter(config("alloc", component("c", "hostile/alloc"), memory_mb=4))
    try:
        flt.process(Frame(img.copy(), "cam", 0, 0.0))
        kind = "none"
    except FilterError as exc:  # not kept: its traceback would keep the dead instance alive
        kind = exc.kind
    assert kind == "memory"
    acct = flt._instance.account  # the dead instance, not rebuilt yet
    assert acct.denied and acct.peak <= 4 << 20 < acct.denied_request
    assert acct.bytes == 0  # its memory was released as soon as it failed
    assert memory.live_memories() == before
    flt.process(Frame(img.copy(), "cam", 1, 0.0))
    assert memory.live_memories() == before + 1
    flt.close()
    assert memory.live_memories() == before  # by refcount, no gc needed


def test_a_small_memory_cap_below_the_guest_minimum_is_a_load_error():
    from pipeless.workers.filters.base import FilterLoadError

    with pytest.raises(FilterLoadError, match="memory cap"):
        build_filter(config("rust", component("rust", "face_tracker"), memory_mb=1))



def test_deadline_counts_cpu_time_so_a_preempted_call_is_not_killed(img, monkeypatch):
    """With no CPU spent (as when the worker is preempted) the deadline is extended,
    up to a wall-clock ceiling of limits.WALL_FACTOR x deadline_ms."""
    from pipeless.workers.wasm import limits

    flt = build_filter(config("loop", component("c", "hostile/loop"), deadline_ms=20))
    monkeypatch.setattr(limits.time, "thread_time", lambda: 0.0)
    t0 = time.perf_counter()
    with pytest.raises(FilterError) as err:
        flt.process(Frame(img.copy(), "cam", 0, 0.0))
    wall = time.perf_counter() - t0
    assert err.value.kind == "deadline"
    assert 0.020 * limits.WALL_FACTOR <= wall < 0.020 * limits.WALL_FACTOR + 1.0
