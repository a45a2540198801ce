"""The trusted filter kind: a Python function run in the worker on the slot's numpy view.

Trusted means no sandbox: use it for filters you wrote yourself. Untrusted or
shared filters belong in wasm.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any, Callable

from pipeless.workers.filters.base import FilterError, FilterLoadError
from pipeless.workers.frame import Frame


def load_function(spec: str) -> Callable[..., Any]:
    """Import 'package.module:function' or '/path/file.py:function'."""
    module_name, _, func_name = spec.rpartition(":")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise FilterLoadError(f"no such file: {path}")
            mod_spec = importlib.util.spec_from_file_location(f"pipeless_user_{path.stem}", path)
            assert mod_spec and mod_spec.loader
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except FilterLoadError:
        raise
    except Exception as exc:  # a user module can raise anything at import
        raise FilterLoadError(f"cannot import {module_name!r}: {exc}") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise FilterLoadError(f"{module_name!r} has no function {func_name!r}")
    return func


class PythonFilter:
    """Calls `function(frame, config)`; its return value becomes the filter's output."""

    def __init__(self, name: str, stage: str, function: str, config: dict[str, Any]) -> None:
        self.name = name
        self.stage = stage
        self.stateful = False
        self.config = config
        self._function = load_function(function)

    def process(self, frame: Frame) -> Any:
        try:
            return self._function(frame, self.config)
        except FilterError:
            raise
        except Exception as exc:
            raise FilterError(f"{type(exc).__name__}: {exc}", "error") from None

    def close(self) -> None:
        pass
