"""What every child process does first: die with its parent, leave Ctrl-C to the parent."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def become_child(parent_pid: int) -> None:
    """Make the kernel SIGTERM us if the orchestrator dies, even by SIGKILL, so no orphan survives it.

    Ctrl-C reaches the whole process group; children ignore SIGINT and wait
    for the orchestrator's Stop so that in-flight frames finish cleanly.
    SIGTERM ends the child at once (SystemExit runs the finally blocks).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        sys.exit(0)
