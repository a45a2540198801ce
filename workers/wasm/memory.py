"""Linear memories made by the host, so the memory cap is exact and attributable.

wasmtime's store limiter (Store.set_limits(memory_size=...)) refuses a
memory.grow beyond the cap silently: the guest sees -1, usually traps a few
instructions later, and the host cannot tell that trap from any other. This
memory creator (wasmtime_config_host_memory_creator_set) reserves each
linear memory's address space with mmap(PROT_NONE) exactly as wasmtime
itself does (reservation + guard, so compiled code keeps its bounds-check
elision), makes pages readable/writable as the memory grows, and refuses a
growth past the owning instance's cap AND records it on that instance's
MemoryAccount. A call that then fails is reported with kind "memory".

The owner of a new memory is the account entered on this thread when the
memory is created (at instantiation); growth is checked against that owner.
"""

from __future__ import annotations

import ctypes
import threading
from ctypes import c_int, c_long, c_size_t, c_void_p
from dataclasses import dataclass
from typing import Any

from wasmtime import _ffi as ffi

from pipeless.workers.wasm import capi

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.restype = c_void_p
_mmap.argtypes = [c_void_p, c_size_t, c_int, c_int, c_int, c_long]
_mprotect = _libc.mprotect
_mprotect.restype = c_int
_mprotect.argtypes = [c_void_p, c_size_t, c_int]
_munmap = _libc.munmap
_munmap.restype = c_int
_munmap.argtypes = [c_void_p, c_size_t]

PROT_NONE, PROT_RW = 0, 3
MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE = 0x02, 0x20, 0x4000
MAP_FAILED = ctypes.c_void_p(-1).value
FOUR_GIB = 1 << 32


@dataclass
class MemoryAccount:
    """One instance's linear memories: its cap, current bytes, and whether a growth was refused."""

    cap: int
    bytes: int = 0
    peak: int = 0
    denied: bool = False
    denied_request: int = 0


class _Memory:
    def __init__(self, owner: MemoryAccount | None, base: int, reserved: int, total: int, size: int, maximum: int):
        self.owner = owner
        self.base = base
        self.reserved = reserved
        self.total = total
        self.size = size
        self.maximum = maximum


_memories: dict[int, _Memory] = {}
_next_id = [1]
_lock = threading.Lock()
_tls = threading.local()


def enter(account: MemoryAccount | None) -> MemoryAccount | None:
    prev = getattr(_tls, "account", None)
    _tls.account = account
    return prev


def _owner() -> MemoryAccount | None:
    return getattr(_tls, "account", None)


@ffi.wasmtime_memory_get_callback_t
def _get_memory(env, byte_size, max_size):  # type: ignore[no-untyped-def]
    m = _memories.get(env or 0)
    if m is None:
        return 0
    byte_size[0] = m.size
    max_size[0] = m.maximum
    return m.base


@ffi.wasmtime_memory_grow_callback_t
def _grow_memory(env, new_size):  # type: ignore[no-untyped-def]
    try:
        m = _memories[env or 0]
        owner = m.owner
        if owner is not None and owner.bytes - m.size + new_size > owner.cap:
            owner.denied = True
            owner.denied_request = new_size
            return capi.new_error(f"pipeless: memory cap of {owner.cap} bytes reached (asked for {new_size})")
        if new_size > m.reserved:
            return capi.new_error("pipeless: growth beyond the memory's reservation")
        if new_size > m.size and _mprotect(m.base, new_size, PROT_RW) != 0:
            return capi.new_error(f"pipeless: mprotect failed (errno {ctypes.get_errno()})")
        if owner is not None:
            owner.bytes += new_size - m.size
            owner.peak = max(owner.peak, owner.bytes)
        m.size = new_size
        return 0
    except BaseException as exc:  # never unwind into wasmtime
        return capi.new_error(f"pipeless: memory growth failed: {exc}")


@ctypes.CFUNCTYPE(None, c_void_p)
def _free_memory(env):  # type: ignore[no-untyped-def]
    with _lock:
        m = _memories.pop(env or 0, None)
    if m is not None:
        if m.owner is not None:
            m.owner.bytes -= m.size
        _munmap(m.base, m.total)


@ffi.wasmtime_new_memory_callback_t
def _new_memory(env, ty, minimum, maximum, reserved, guard, out):  # type: ignore[no-untyped-def]
    try:
        owner = _owner()
        if owner is not None and owner.bytes + minimum > owner.cap:
            owner.denied = True
            owner.denied_request = minimum
            return capi.new_error(f"pipeless: memory cap of {owner.cap} bytes is below the module's minimum {minimum}")
        limit = maximum if maximum and maximum < FOUR_GIB else FOUR_GIB
        span = reserved if reserved else max(minimum, limit)
        total = span + guard
        base = _mmap(None, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        if not base or base == MAP_FAILED:
            return capi.new_error(f"pipeless: cannot reserve {total} bytes (errno {ctypes.get_errno()})")
        if minimum and _mprotect(base, minimum, PROT_RW) != 0:
            _munmap(base, total)
            return capi.new_error(f"pipeless: mprotect failed (errno {ctypes.get_errno()})")
        with _lock:
            mid = _next_id[0]
            _next_id[0] += 1
            _memories[mid] = _Memory(owner, base, span, total, minimum, min(limit, span))
        if owner is not None:
            owner.bytes += minimum
            owner.peak = max(owner.peak, owner.bytes)
        o = out[0]
        o.env = mid
        o.get_memory = _get_memory
        o.grow_memory = _grow_memory
        o.finalizer = _free_memory
        return 0
    except BaseException as exc:
        return capi.new_error(f"pipeless: memory creation failed: {exc}")


_creator: Any = None


def install(config: Any) -> None:
    """Make `config` (a wasmtime.Config) create linear memories through this module."""
    global _creator
    _creator = ffi.wasmtime_memory_creator_t()
    _creator.env = None
    _creator.new_memory = _new_memory
    _creator.finalizer = ctypes.CFUNCTYPE(None, c_void_p)(0)
    ffi.wasmtime_config_host_memory_creator_set(config.ptr(), ctypes.byref(_creator))


def live_memories() -> int:
    return len(_memories)
