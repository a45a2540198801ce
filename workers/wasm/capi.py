"""The few wasmtime C-API entry points the lean call path uses, typed for speed.

wasmtime-py's stock component API re-reads the function type, builds Python
objects for every value and walks records through ctypes structs on every
call, which costs 10-45 us per crossing and ~1 ms for a list of ten records.
Here the same C functions (from the very library wasmtime-py loaded, so the
pinned version is the one used) are declared with plain integer arguments,
and values are read and written as raw bytes at known offsets. The offsets
come from ctypes.sizeof of wasmtime-py's own struct definitions and are
checked at import, so a layout change fails loudly instead of corrupting
memory.
"""

from __future__ import annotations

import ctypes
from ctypes import c_bool, c_char_p, c_size_t, c_uint32, c_uint64, c_void_p

from wasmtime import _ffi as ffi

_dll = ffi.dll


def _fn(name: str, restype, *argtypes):  # type: ignore[no-untyped-def]
    """A fresh foreign-function object (never the one wasmtime-py configured)."""
    addr = ctypes.cast(getattr(_dll, name), c_void_p).value
    return ctypes.CFUNCTYPE(restype, *argtypes)(addr)


# --- value layout (wasmtime_component_val_t and friends) ---
VAL_SIZE = ctypes.sizeof(ffi.wasmtime_component_val_t)  # kind u8, pad, 24-byte union
ENTRY_SIZE = ctypes.sizeof(ffi.wasmtime_component_valrecord_entry_t)  # name vec, val
UNION_OFF = ffi.wasmtime_component_val_t.of.offset
ENTRY_VAL_OFF = ffi.wasmtime_component_valrecord_entry_t.val.offset
assert (VAL_SIZE, ENTRY_SIZE, UNION_OFF, ENTRY_VAL_OFF) == (32, 48, 8, 16), "wasmtime value layout changed"
assert [f[0] for f in ffi.wasm_byte_vec_t._fields_] == ["size", "data"]
assert [f[0] for f in ffi.wasmtime_component_vallist_t._fields_] == ["size", "data"]
assert [f[0] for f in ffi.wasmtime_component_valrecord_t._fields_] == ["size", "data"]

K_BOOL = ffi.WASMTIME_COMPONENT_BOOL.value
K_S8 = ffi.WASMTIME_COMPONENT_S8.value
K_U8 = ffi.WASMTIME_COMPONENT_U8.value
K_S16 = ffi.WASMTIME_COMPONENT_S16.value
K_U16 = ffi.WASMTIME_COMPONENT_U16.value
K_S32 = ffi.WASMTIME_COMPONENT_S32.value
K_U32 = ffi.WASMTIME_COMPONENT_U32.value
K_S64 = ffi.WASMTIME_COMPONENT_S64.value
K_U64 = ffi.WASMTIME_COMPONENT_U64.value
K_F32 = ffi.WASMTIME_COMPONENT_F32.value
K_F64 = ffi.WASMTIME_COMPONENT_F64.value
K_STRING = ffi.WASMTIME_COMPONENT_STRING.value
K_LIST = ffi.WASMTIME_COMPONENT_LIST.value
K_RECORD = ffi.WASMTIME_COMPONENT_RECORD.value
K_VARIANT = ffi.WASMTIME_COMPONENT_VARIANT.value
K_ENUM = ffi.WASMTIME_COMPONENT_ENUM.value
K_OPTION = ffi.WASMTIME_COMPONENT_OPTION.value
K_RESULT = ffi.WASMTIME_COMPONENT_RESULT.value
K_RESOURCE = ffi.WASMTIME_COMPONENT_RESOURCE.value

# --- functions ---
func_call = _fn("wasmtime_component_func_call", c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t)
func_post_return = _fn("wasmtime_component_func_post_return", c_void_p, c_void_p, c_void_p)
val_delete = _fn("wasmtime_component_val_delete", None, c_void_p)
resource_any_drop = _fn("wasmtime_component_resource_any_drop", c_void_p, c_void_p, c_void_p)
resource_any_delete = _fn("wasmtime_component_resource_any_delete", None, c_void_p)
resource_host_new = _fn("wasmtime_component_resource_host_new", c_void_p, c_bool, c_uint32, c_uint32)
resource_host_to_any = _fn("wasmtime_component_resource_host_to_any", c_void_p, c_void_p, c_void_p, c_void_p)
resource_host_delete = _fn("wasmtime_component_resource_host_delete", None, c_void_p)
vallist_new_uninit = _fn("wasmtime_component_vallist_new_uninit", None, c_void_p, c_size_t)
valrecord_new_uninit = _fn("wasmtime_component_valrecord_new_uninit", None, c_void_p, c_size_t)
val_new = _fn("wasmtime_component_val_new", c_void_p, c_void_p)
byte_vec_new = _fn("wasm_byte_vec_new", None, c_void_p, c_size_t, c_char_p)
byte_vec_delete = _fn("wasm_byte_vec_delete", None, c_void_p)
error_new = _fn("wasmtime_error_new", c_void_p, c_char_p)
error_message = _fn("wasmtime_error_message", None, c_void_p, c_void_p)
error_delete = _fn("wasmtime_error_delete", None, c_void_p)
set_epoch_deadline = _fn("wasmtime_context_set_epoch_deadline", None, c_void_p, c_uint64)

# (env, context, func type, args, nargs, results, nresults) -> error or NULL
HOST_FUNC = ctypes.CFUNCTYPE(c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t)
FINALIZER = ctypes.CFUNCTYPE(None, c_void_p)
linker_instance_add_func = _fn(
    "wasmtime_component_linker_instance_add_func",
    c_void_p, c_void_p, c_char_p, c_size_t, HOST_FUNC, c_void_p, FINALIZER,
)

def take_error(err: int) -> str:
    """The message of a wasmtime_error_t, which is freed."""
    vec = (ctypes.c_uint64 * 2)()
    addr = ctypes.addressof(vec)
    error_message(err, addr)
    msg = ctypes.string_at(vec[1], vec[0]).decode("utf-8", "replace")
    byte_vec_delete(addr)
    error_delete(err)
    return msg


def new_error(message: str) -> int:
    return error_new(message.encode("utf-8", "replace")) or 0


def addr_of(obj) -> int:  # type: ignore[no-untyped-def]
    return ctypes.cast(obj, c_void_p).value or 0
val_clone = _fn("wasmtime_component_val_clone", None, c_void_p, c_void_p)  # (src, dst)
