"""One POSIX shared-memory segment, without Python's resource tracker.

multiprocessing.shared_memory registers every segment it opens with the
resource tracker, which unlinks it when *any* attaching process exits (and
warns about "leaked" segments it does not own). Only the orchestrator may
unlink, so we talk to shm_open/mmap directly: creators unlink, attachers
only unmap.

Names carry the owner's pid (`pipeless-<pid>-...`) so a segment left behind by
a killed run is recognised and reclaimed at the next start.
"""

from __future__ import annotations

import mmap
import os
import re

import _posixshmem  # CPython's thin shm_open/shm_unlink wrapper (POSIX only)
import psutil

SEGMENT_PREFIX = "pipeless-"
_SHM_DIR = "/dev/shm"
_OWNER = re.compile(rf"^{re.escape(SEGMENT_PREFIX)}(\d+)-")


class Segment:
    """A mapped shared-memory segment; `buf` is a writable memoryview-able mmap."""

    def __init__(self, name: str, size: int, *, create: bool) -> None:
        self.name = name
        self.owner = create
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = _posixshmem.shm_open("/" + name, flags, mode=0o600)
        try:
            if create:
                os.ftruncate(fd, size)
            else:
                size = os.fstat(fd).st_size
            self.size = size
            self.mmap = mmap.mmap(fd, size)
        except BaseException:
            if create:
                _posixshmem.shm_unlink("/" + name)
            raise
        finally:
            os.close(fd)

    @classmethod
    def create(cls, tag: str, size: int) -> "Segment":
        return cls(f"{SEGMENT_PREFIX}{os.getpid()}-{tag}", size, create=True)

    @classmethod
    def attach(cls, name: str) -> "Segment":
        return cls(name, 0, create=False)

    def close(self) -> None:
        """Unmap; the owner also unlinks. Views still alive keep the mapping (BufferError) until collected."""
        try:
            self.mmap.close()
        except BufferError:
            pass  # numpy views outlive us; the kernel frees the mapping when they go
        if self.owner:
            self.unlink()

    def unlink(self) -> None:
        try:
            _posixshmem.shm_unlink("/" + self.name)
        except FileNotFoundError:
            pass
        self.owner = False


def reclaim_stale_segments() -> list[str]:
    """Unlink segments whose owning process is gone (a run killed with SIGKILL); return their names."""
    reclaimed: list[str] = []
    try:
        names = os.listdir(_SHM_DIR)
    except OSError:
        return reclaimed
    for name in names:
        match = _OWNER.match(name)
        if not match:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or (psutil.pid_exists(pid) and _is_pipeless(pid)):
            continue
        try:
            _posixshmem.shm_unlink("/" + name)
            reclaimed.append(name)
        except FileNotFoundError:
            pass
    return reclaimed


def _is_pipeless(pid: int) -> bool:
    """A live pid may have been reused by an unrelated program: only a pipeless process keeps its segment."""
    try:
        cmd = " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "pipeless" in cmd or "pytest" in cmd or "python" in cmd
