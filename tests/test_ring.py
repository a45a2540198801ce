"""The shared-memory ring: allocation, stale-handle refusal, attach without unlinking, reclaim."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from pipeless.protocol.messages import SlotHandle
from pipeless.shm import FrameRing, StaleHandle, reclaim_stale_segments
from pipeless.shm.allocator import SlotAllocator


@pytest.fixture
def ring():
    r = FrameRing.create(4, 64 * 48 * 3, 32 * 32 * 3 * 4, tag="test")
    yield r
    r.close()


def test_allocates_every_slot_once_then_waits(ring):
    alloc = SlotAllocator(ring)
    handles = [alloc.try_acquire() for _ in range(4)]
    assert sorted(h.slot for h in handles) == [0, 1, 2, 3]
    assert alloc.try_acquire() is None
    assert alloc.acquire(timeout=0.05) is None
    alloc.release(handles[2])
    again = alloc.acquire(timeout=0.05)
    assert again.slot == 2 and again.generation > handles[2].generation
    assert alloc.in_use == 4


def test_stale_generation_is_refused(ring):
    alloc = SlotAllocator(ring)
    h = alloc.try_acquire()
    ring.stamp(h.slot, stream=0, frame=7, pts=0.5, width=64, height=48)
    assert ring.frame_view(h).shape == (48, 64, 3)
    alloc.release(h)
    with pytest.raises(StaleHandle):
        ring.frame_view(h)
    with pytest.raises(StaleHandle):
        ring.tensor_view(h, (32, 32, 3))
    with pytest.raises(StaleHandle):
        ring.frame_view(SlotHandle(99, 1))


def test_release_twice_does_not_free_twice(ring):
    alloc = SlotAllocator(ring)
    h = alloc.try_acquire()
    alloc.release(h)
    alloc.release(h)
    got = {alloc.try_acquire().slot for _ in range(4)}
    assert got == {0, 1, 2, 3} and alloc.try_acquire() is None


def test_attached_views_share_pixels_and_closing_does_not_unlink(ring):
    alloc = SlotAllocator(ring)
    h = alloc.try_acquire()
    ring.stamp(h.slot, stream=1, frame=3, pts=0.1, width=64, height=48)
    other = FrameRing.attach(ring.layout)
    view = other.frame_view(h)
    view[...] = 123
    assert np.all(ring.frame_view(h) == 123)
    tensor = other.tensor_view(h, (32, 32, 3))
    tensor[...] = 0.5
    assert float(ring.tensor_view(h, (32, 32, 3)).mean()) == 0.5
    del view, tensor
    other.close()
    assert os.path.exists(f"/dev/shm/{ring.layout.name}")


def test_frames_larger_than_the_slot_are_refused(ring):
    with pytest.raises(ValueError):
        ring.frame_buffer(0, 640, 480)


def test_segment_of_a_killed_run_is_reclaimed():
    code = (
        "import os; from pipeless.shm import FrameRing; r = FrameRing.create(2, 1000, 0, tag='killed');"
        "print(r.layout.name, flush=True); os.kill(os.getpid(), 9)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    name = proc.stdout.strip()
    assert name.startswith("pipeless-") and os.path.exists(f"/dev/shm/{name}")
    assert name in reclaim_stale_segments()
    assert not os.path.exists(f"/dev/shm/{name}")


def test_live_owner_keeps_its_segment(ring):
    reclaim_stale_segments()
    assert os.path.exists(f"/dev/shm/{ring.layout.name}")
