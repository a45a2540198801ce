"""WebAssembly filter kinds: `wasm` (components of wit/, component.py) and `wasm-module` (module.py).

Modules, one concept each: engine.py (engine, epoch ticker, compiled-code
cache), memory.py (host-made linear memories: the exact memory cap),
capi.py + vals.py (the lean C-API call path), schema.py (the host ABI as
data), ops.py (the image operations), calls.py (per-call context, failure
kinds). See docs/wasm-abi.md.
"""
