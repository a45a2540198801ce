"""Byte-level readers and writers for wasmtime_component_val_t, compiled from schema types.

A reader turns the value at an address into plain Python (ints, floats, str,
tuples for records, bytes for list<u8>); a writer turns Python into the
32 bytes of a value, allocating any list/record/string storage with the C
API's own allocators (wasmtime frees it after lowering). Records are read
with ONE ctypes.string_at of all their entries and ONE precompiled
struct.unpack, and list<u8> goes through numpy, never element by element.

Record values are plain tuples in field order (the schema says the order).
wasmtime checks record field NAMES when lowering, so records are written by
deep-cloning a prebuilt template (one C call allocates entries and names) and
patching the values in place.
"""

from __future__ import annotations

import ctypes
import struct
import threading
from typing import Any, Callable

import numpy as np

from pipeless.workers.wasm import capi
from pipeless.workers.wasm.schema import (
    Borrow, Enum, ListOf, Option, Prim, Record, Result, Type, Variant,
)

string_at = ctypes._string_at  # type: ignore[attr-defined]  # the foreign function itself, minus a Python wrapper
memmove = ctypes.memmove

_PRIM_CODE = {"bool": "?", "s8": "b", "u8": "B", "s16": "h", "u16": "H", "s32": "i", "u32": "I",
              "s64": "q", "u64": "Q", "f32": "f", "f64": "d"}
_PRIM_KIND = {"bool": capi.K_BOOL, "s8": capi.K_S8, "u8": capi.K_U8, "s16": capi.K_S16, "u16": capi.K_U16,
              "s32": capi.K_S32, "u32": capi.K_U32, "s64": capi.K_S64, "u64": capi.K_U64,
              "f32": capi.K_F32, "f64": capi.K_F64}
_PAIR = struct.Struct("<QQ")
_local = threading.local()


def _scratch() -> tuple[Any, int]:
    """A per-thread (size, pointer) out-slot for the C allocators: ctypes calls
    release the GIL, so a shared slot could be overwritten by another thread."""
    try:
        return _local.scratch
    except AttributeError:
        buf = (ctypes.c_uint64 * 2)()
        _local.scratch = (buf, ctypes.addressof(buf))
        return _local.scratch


class AbiError(Exception):
    """A value of the wrong shape crossed the boundary (a host bug, never the guest's)."""


# ---------------------------------------------------------------- readers
# A "union reader" takes the 24 union bytes' decoded words and returns the
# value. To read fields in bulk, each type declares the struct code(s) for its
# union and a post-processor over the unpacked items.

def _union_spec(ty: Type) -> tuple[str, int, Callable[..., Any] | None]:
    """(struct codes for the 24-byte union, how many items they yield, post(items...) or None)."""
    if isinstance(ty, Prim):
        if ty.name == "string":
            return "QQ8x", 2, _read_string
        c = _PRIM_CODE[ty.name]
        return c + f"{24 - struct.calcsize('<' + c)}x", 1, None
    if isinstance(ty, Record):
        rd = record_reader(ty)
        return "QQ8x", 2, lambda size, ptr: rd(ptr)
    if isinstance(ty, ListOf):
        rd_list = list_reader(ty)
        return "QQ8x", 2, rd_list
    if isinstance(ty, Enum):
        index = {c.encode(): i for i, c in enumerate(ty.cases)}
        return "QQ8x", 2, lambda size, ptr: index[string_at(ptr, size)]
    if isinstance(ty, Option):
        inner = reader(ty.inner)
        return "Q16x", 1, lambda ptr: None if not ptr else inner(ptr)
    if isinstance(ty, Variant):
        cases = {c.encode(): (c, reader(t) if t is not None else None) for c, t in ty.cases}

        def post_variant(size: int, ptr: int, val: int) -> tuple[str, Any]:
            name, rd = cases[string_at(ptr, size)]
            return name, (rd(val) if rd and val else None)
        return "QQQ", 3, post_variant
    if isinstance(ty, Result):
        ok = reader(ty.ok) if ty.ok is not None else None
        err = reader(ty.err) if ty.err is not None else None

        def post_result(is_ok: bool, val: int) -> tuple[bool, Any]:
            rd = ok if is_ok else err
            return bool(is_ok), (rd(val) if rd and val else None)
        return "?7xQ8x", 2, post_result
    if isinstance(ty, Borrow):
        return "Q16x", 1, None  # the resource_any pointer
    raise TypeError(ty)


def _read_string(size: int, ptr: int) -> str:
    return string_at(ptr, size).decode("utf-8") if size else ""


_record_readers: dict[Record, Callable[[int], tuple]] = {}


def record_reader(rec: Record) -> Callable[[int], tuple]:
    """entries pointer -> tuple of field values."""
    if rec in _record_readers:
        return _record_readers[rec]
    fmt = "<"
    steps: list[tuple[int, int, Callable[..., Any] | None]] = []
    pos = 0
    for _, ty in rec.fields:
        codes, n, post = _union_spec(ty)
        fmt += "24x" + codes  # name (16) + kind/pad (8), then the union
        steps.append((pos, n, post))
        pos += n
    unpack = struct.Struct(fmt).unpack
    size = len(rec.fields) * capi.ENTRY_SIZE
    simple = all(p is None for _, _, p in steps)

    if simple:
        def read(ptr: int) -> tuple:
            return unpack(string_at(ptr, size))
    else:
        def read(ptr: int) -> tuple:
            items = unpack(string_at(ptr, size))
            out = []
            for start, n, post in steps:
                if post is None:
                    out.append(items[start])
                else:
                    out.append(post(*items[start:start + n]))
            return tuple(out)
    _record_readers[rec] = read
    return read


def list_reader(ty: ListOf) -> Callable[[int, int], Any]:
    """(size, data pointer) -> list (bytes for list<u8>)."""
    el = ty.element
    if isinstance(el, Prim) and el.name == "u8":
        def read_bytes(size: int, ptr: int) -> bytes:
            if not size:
                return b""
            raw = np.frombuffer(string_at(ptr, size * capi.VAL_SIZE), np.uint8).reshape(size, capi.VAL_SIZE)
            return raw[:, capi.UNION_OFF].tobytes()
        return read_bytes
    codes, n, post = _union_spec(el)
    per = struct.Struct("<8x" + codes)  # kind/pad, union
    if n == 1 and post is None:
        def read_prims(size: int, ptr: int) -> list:
            return [v[0] for v in per.iter_unpack(string_at(ptr, size * capi.VAL_SIZE))]
        return read_prims

    def read_list(size: int, ptr: int) -> list:
        if not size:
            return []
        return [post(*v) if post else v[0] for v in per.iter_unpack(string_at(ptr, size * capi.VAL_SIZE))]
    return read_list


def reader(ty: Type) -> Callable[[int], Any]:
    """address of a whole val_t -> value."""
    codes, n, post = _union_spec(ty)
    st = struct.Struct("<8x" + codes)

    def read(addr: int) -> Any:
        items = st.unpack(string_at(addr, capi.VAL_SIZE))
        if post is None:
            return items[0]
        return post(*items)
    return read


# ---------------------------------------------------------------- writers
# A writer is put(dst_address, value): it writes a whole val_t at dst.
# Records are written by deep-cloning a prebuilt template of their type (one
# C call allocates the entries AND their field names, which wasmtime checks)
# and patching the field values in place.

_HEAD = struct.Struct("<B7xQQ8x")  # kind, (size, pointer) union: string, list, record, enum
_PTR_AT = struct.Struct("<QQ")


def new_string(s: str | bytes) -> tuple[int, int]:
    b = s.encode("utf-8") if isinstance(s, str) else s
    buf, addr = _scratch()
    capi.byte_vec_new(addr, len(b), b)
    return buf[0], buf[1]


class _Template:
    """A val_t of a record type with names set and zero values, owned forever."""

    def __init__(self, rec: Record) -> None:
        n = len(rec.fields)
        buf, addr = _scratch()
        capi.valrecord_new_uninit(addr, n)
        ptr = buf[1]
        body = bytearray()
        for name, ty in rec.fields:
            size, nptr = new_string(name)
            body += _PAIR.pack(size, nptr)
            body += _zero_val(ty)
        memmove(ptr, bytes(body), len(body))
        self.buf = ctypes.create_string_buffer(_HEAD.pack(capi.K_RECORD, n, ptr), capi.VAL_SIZE)
        self.addr = ctypes.addressof(self.buf)


def _zero_val(ty: Type) -> bytes:
    if isinstance(ty, Prim):
        if ty.name == "string":
            return _HEAD.pack(capi.K_STRING, 0, 0)
        return struct.pack("<B31x", _PRIM_KIND[ty.name])
    if isinstance(ty, Record):
        out = ctypes.create_string_buffer(capi.VAL_SIZE)
        capi.val_clone(_template(ty).addr, ctypes.addressof(out))
        return out.raw
    if isinstance(ty, ListOf):
        return _HEAD.pack(capi.K_LIST, 0, 0)
    raise TypeError(f"no template for a record field of type {ty}")


_templates: dict[Record, _Template] = {}


def _template(rec: Record) -> _Template:
    t = _templates.get(rec)
    if t is None:
        t = _templates[rec] = _Template(rec)
    return t


def _patcher(rec: Record) -> Callable[[int, tuple], None]:
    """entries pointer (of a fresh clone) + tuple -> field values written in place."""
    n = len(rec.fields)
    size = n * capi.ENTRY_SIZE
    ops: list[tuple[str, int, Any]] = []
    for i, (_, ty) in enumerate(rec.fields):
        off = i * capi.ENTRY_SIZE + capi.ENTRY_VAL_OFF + capi.UNION_OFF
        if isinstance(ty, Prim) and ty.name != "string":
            ops.append(("prim", off, struct.Struct("<" + _PRIM_CODE[ty.name])))
        elif isinstance(ty, Prim):
            ops.append(("string", off, None))
        elif isinstance(ty, Record):
            ops.append(("record", off, _patcher(ty)))
        elif isinstance(ty, ListOf):
            ops.append(("list", off, writer(ty)))
        else:
            raise TypeError(ty)
    all_prims = all(kind == "prim" for kind, _, _ in ops)
    if all_prims:
        # Values only: one read of the block, one write back.
        def patch_prims(ptr: int, v: tuple) -> None:
            block = bytearray(string_at(ptr, size))
            for (_, off, st), x in zip(ops, v):
                st.pack_into(block, off, x)
            memmove(ptr, bytes(block), size)
        return patch_prims

    def patch(ptr: int, v: tuple) -> None:
        block = bytearray(string_at(ptr, size))
        for (kind, off, arg), x in zip(ops, v):
            if kind == "prim":
                arg.pack_into(block, off, x)
            elif kind == "string":
                _PAIR.pack_into(block, off, *new_string(x))
            elif kind == "record":
                arg(_PAIR.unpack_from(block, off)[1], x)
            else:  # list: a fresh val written into a scratch, its union copied over
                tmp = ctypes.create_string_buffer(capi.VAL_SIZE)
                arg(ctypes.addressof(tmp), x)
                block[off:off + 16] = tmp.raw[capi.UNION_OFF:capi.UNION_OFF + 16]
        memmove(ptr, bytes(block), size)
    return patch


def writer(ty: Type) -> Callable[[int, Any], None]:
    """put(dst, value): write the val_t for value at address dst."""
    if isinstance(ty, Prim):
        if ty.name == "string":
            k = capi.K_STRING

            def put_string(dst: int, v: str) -> None:
                size, ptr = new_string(v)
                memmove(dst, _HEAD.pack(k, size, ptr), capi.VAL_SIZE)
            return put_string
        code = _PRIM_CODE[ty.name]
        st = struct.Struct(f"<B7x{code}{24 - struct.calcsize('<' + code)}x")
        kind = _PRIM_KIND[ty.name]
        return lambda dst, v: memmove(dst, st.pack(kind, v), capi.VAL_SIZE)
    if isinstance(ty, Record):
        tmpl = _template(ty)
        patch = _patcher(ty)
        clone = capi.val_clone
        taddr = tmpl.addr

        def put_record(dst: int, v: tuple) -> None:
            clone(taddr, dst)
            patch(_PTR_AT.unpack(string_at(dst + capi.UNION_OFF, 16))[1], v)
        return put_record
    if isinstance(ty, ListOf):
        k = capi.K_LIST
        new_uninit = capi.vallist_new_uninit
        el = ty.element
        if isinstance(el, Prim) and el.name == "u8":
            def put_bytes(dst: int, v: bytes | np.ndarray) -> None:
                data = v.reshape(-1) if isinstance(v, np.ndarray) else np.frombuffer(v, np.uint8)
                n = int(data.size)
                ptr = 0
                if n:
                    buf = np.zeros((n, capi.VAL_SIZE), np.uint8)
                    buf[:, 0] = capi.K_U8
                    buf[:, capi.UNION_OFF] = data
                    sbuf, saddr = _scratch()
                    new_uninit(saddr, n)
                    ptr = sbuf[1]
                    memmove(ptr, buf.ctypes.data, buf.nbytes)
                memmove(dst, _HEAD.pack(k, n, ptr), capi.VAL_SIZE)
            return put_bytes
        put_el = writer(el)
        vs = capi.VAL_SIZE

        def put_list(dst: int, v: list) -> None:
            n = len(v)
            ptr = 0
            if n:
                sbuf, saddr = _scratch()
                new_uninit(saddr, n)
                ptr = sbuf[1]
                for i, x in enumerate(v):
                    put_el(ptr + i * vs, x)
            memmove(dst, _HEAD.pack(k, n, ptr), capi.VAL_SIZE)
        return put_list
    if isinstance(ty, Enum):
        names = [c.encode() for c in ty.cases]

        def put_enum(dst: int, v: int) -> None:
            size, ptr = new_string(names[v])
            memmove(dst, _HEAD.pack(capi.K_ENUM, size, ptr), capi.VAL_SIZE)
        return put_enum
    if isinstance(ty, Option):
        put_inner = writer(ty.inner)
        head = struct.Struct("<B7xQ16x")

        def put_option(dst: int, v: Any) -> None:
            memmove(dst, head.pack(capi.K_OPTION, 0 if v is None else _boxed(put_inner, v)), capi.VAL_SIZE)
        return put_option
    if isinstance(ty, Variant):
        cases = {c: (c.encode(), writer(t) if t is not None else None) for c, t in ty.cases}
        head = struct.Struct("<B7xQQQ")

        def put_variant(dst: int, v: tuple[str, Any]) -> None:
            name, w = cases[v[0]]
            size, ptr = new_string(name)
            memmove(dst, head.pack(capi.K_VARIANT, size, ptr, _boxed(w, v[1]) if w else 0), capi.VAL_SIZE)
        return put_variant
    if isinstance(ty, Result):
        w_ok = writer(ty.ok) if ty.ok is not None else None
        w_err = writer(ty.err) if ty.err is not None else None
        head = struct.Struct("<B7x?7xQ8x")

        def put_result(dst: int, v: tuple[bool, Any]) -> None:
            is_ok, payload = v
            w = w_ok if is_ok else w_err
            memmove(dst, head.pack(capi.K_RESULT, is_ok, _boxed(w, payload) if w else 0), capi.VAL_SIZE)
        return put_result
    raise TypeError(f"no writer for {ty}")


def _boxed(put: Callable[[int, Any], None], v: Any) -> int:
    """A heap-allocated val_t holding v (for option/variant/result payloads)."""
    tmp = ctypes.create_string_buffer(capi.VAL_SIZE)
    put(ctypes.addressof(tmp), v)
    return capi.val_new(ctypes.addressof(tmp))


def args_reader(types: list[Type]) -> tuple[Callable[[int], list], list[int]]:
    """An array of len(types) val_t -> list of values; also the indexes of borrow params
    (their value is the resource_any pointer, which the caller must drop)."""
    fmt = "<"
    steps: list[tuple[int, int, Callable[..., Any] | None]] = []
    pos = 0
    for ty in types:
        codes, n, post = _union_spec(ty)
        fmt += "8x" + codes
        steps.append((pos, n, post))
        pos += n
    unpack = struct.Struct(fmt).unpack
    size = len(types) * capi.VAL_SIZE
    borrows = [i for i, t in enumerate(types) if isinstance(t, Borrow)]

    def read(addr: int) -> list:
        if not size:
            return []
        items = unpack(string_at(addr, size))
        return [items[s] if post is None else post(*items[s:s + n]) for s, n, post in steps]
    return read, borrows
