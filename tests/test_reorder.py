"""Per-stream order restored from out-of-order completion, with dropped frames skipped."""

from __future__ import annotations

import random

import pytest

from pipeless.orchestrator.reorder import OrderGate


def test_shuffled_completion_comes_out_in_order():
    rng = random.Random(7)
    order = list(range(500))
    rng.shuffle(order)
    gate: OrderGate[int] = OrderGate()
    out: list[int] = []
    for i in order:
        gate.push(i, i)
        out.extend(gate.pop_ready())
    assert out == list(range(500))
    assert gate.waiting == 0


def test_dropped_frames_do_not_stall():
    gate: OrderGate[str] = OrderGate()
    gate.push(2, "c")
    gate.push(0, "a")
    assert gate.pop_ready() == ["a"]
    gate.skip(1)
    assert gate.pop_ready() == ["c"]
    gate.skip(3)
    gate.push(4, "e")
    assert gate.pop_ready() == ["e"]
    assert gate.next == 5


def test_duplicate_frame_is_an_error():
    gate: OrderGate[int] = OrderGate()
    gate.push(0, 0)
    gate.pop_ready()
    with pytest.raises(ValueError):
        gate.push(0, 0)
