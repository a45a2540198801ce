"""Starting, watching and restarting the worker and inference processes.

Each incarnation of a child gets a fresh ZeroMQ identity, so a reply that a
dead incarnation sent before it died can never be mistaken for the new one's.
The orchestrator remembers which frames each child holds; when a child dies
those frames are handed to its successor, so a crash loses no frame.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import multiprocess

from pipeless.orchestrator.config import PipelineConfig
from pipeless.orchestrator.ticket import Ticket
from pipeless.protocol.launch import ChildArgs, pack
from pipeless.protocol.messages import ModelInput, RingLayout

log = logging.getLogger("pipeless")

_ENTRY = {
    "worker": "pipeless.workers.worker",
    "inference": "pipeless.workers.inference.process",
}
MAX_RESTARTS = 5  # within RESTART_WINDOW_S: beyond that a child is crash-looping and the run stops
RESTART_WINDOW_S = 30.0


def _child_main(module: str, blob: bytes) -> None:
    """A child's unexpected crash is one line on stderr (the supervisor restarts it); the traceback
    is printed too only with PIPELESS_DEBUG=1, for whoever is debugging pipeless itself."""
    import importlib
    import sys
    import traceback

    try:
        importlib.import_module(module).main(blob)
    except SystemExit:
        raise
    except BaseException as exc:
        if os.environ.get("PIPELESS_DEBUG"):
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"pipeless: {module.rsplit('.', 1)[-1]} crashed: {type(exc).__name__}: {first}", file=sys.stderr)
        sys.exit(1)


@dataclass
class Child:
    role: str
    index: int
    incarnation: int
    identity: bytes
    process: Any
    ready: bool = False
    provider: str = ""
    model_input: ModelInput | None = None
    inflight: "OrderedDict[tuple[int, int], Ticket]" = field(default_factory=OrderedDict)

    @property
    def label(self) -> str:
        return "inference" if self.role == "inference" else f"worker {self.index}"


class CrashLoop(Exception):
    pass


class Supervisor:
    def __init__(self, cfg: PipelineConfig, endpoints: dict[str, str]) -> None:
        self.cfg = cfg
        self.endpoints = endpoints
        self.mp = multiprocess.get_context("spawn")
        self.children: dict[bytes, Child] = {}
        self.restarts: dict[str, int] = {}
        self._recent: deque[float] = deque()
        self.ring: RingLayout | None = None
        self.model_input: ModelInput | None = None

    def spawn(self, role: str, index: int, incarnation: int = 0) -> Child:
        identity = f"{role}-{index}-{incarnation}-{os.getpid()}".encode()
        args = ChildArgs(role=role, index=index, identity=identity, parent_pid=os.getpid(),
                         endpoint=self.endpoints[role], config=self.cfg, ring=self.ring,
                         model_input=self.model_input)
        proc = self.mp.Process(target=_child_main, args=(_ENTRY[role], pack(args)),
                               name=f"pipeless-{role}-{index}", daemon=True)
        proc.start()
        child = Child(role, index, incarnation, identity, proc)
        self.children[identity] = child
        return child

    def of_role(self, role: str) -> list[Child]:
        return [c for c in self.children.values() if c.role == role]

    def reap_dead(self) -> list[Child]:
        """Children that died; each is replaced by a new incarnation (its frames are the caller's to move)."""
        dead = [c for c in self.children.values() if not c.process.is_alive()]
        for child in dead:
            del self.children[child.identity]
            now = time.monotonic()
            self._recent.append(now)
            while self._recent and now - self._recent[0] > RESTART_WINDOW_S:
                self._recent.popleft()
            if len(self._recent) > MAX_RESTARTS:
                raise CrashLoop(f"{child.label} keeps dying (exit code {child.process.exitcode}); "
                                f"{len(self._recent)} restarts in {RESTART_WINDOW_S:.0f} s")
            self.restarts[child.label] = self.restarts.get(child.label, 0) + 1
            log.warning("pipeless: %s died (exit code %s); restarting it, %d frame(s) handed over",
                        child.label, child.process.exitcode, len(child.inflight))
            self.spawn(child.role, child.index, child.incarnation + 1)
        return dead

    def stop_all(self, send_stop, timeout: float = 2.0) -> None:
        """Ask every child to stop, then terminate and finally kill the ones that linger."""
        for child in list(self.children.values()):
            if child.process.is_alive():
                send_stop(child)
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            child.process.join(max(0.0, deadline - time.monotonic()))
        for child in self.children.values():
            if child.process.is_alive():
                child.process.terminate()
        for child in self.children.values():
            child.process.join(1.0)
            if child.process.is_alive():
                child.process.kill()
                child.process.join(1.0)
