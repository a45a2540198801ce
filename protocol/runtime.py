"""Where a run's socket files live, and how a dead run's are cleaned up.

ipc:// sockets are files; they go in one folder per run (`pipeless-<pid>`
under $XDG_RUNTIME_DIR or /tmp) that the orchestrator removes on exit, and
that the next start removes if its owner was killed.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import psutil

_PREFIX = "pipeless-"


def _base() -> str:
    return os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()


class RuntimeDir:
    def __init__(self) -> None:
        self.path = os.path.join(_base(), f"{_PREFIX}{os.getpid()}")
        os.makedirs(self.path, mode=0o700, exist_ok=True)

    def endpoint(self, name: str) -> str:
        return f"ipc://{os.path.join(self.path, name + '.sock')}"

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def reclaim_stale_runtime_dirs() -> list[str]:
    removed = []
    base = _base()
    try:
        names = os.listdir(base)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(_PREFIX) or not name[len(_PREFIX):].isdigit():
            continue
        pid = int(name[len(_PREFIX):])
        if pid == os.getpid() or not psutil.pid_exists(pid):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            removed.append(name)
    return removed
