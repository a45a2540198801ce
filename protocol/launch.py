"""What a child process is told at start, as one msgpack blob (no pickling of live objects)."""

from __future__ import annotations

import msgspec

from pipeless.orchestrator.config import PipelineConfig
from pipeless.protocol.messages import ModelInput
from pipeless.protocol.messages import RingLayout


class ChildArgs(msgspec.Struct, kw_only=True):
    role: str  # "worker" or "inference"
    index: int  # worker number; 0 hosts the stateful filters
    identity: bytes  # ZeroMQ routing id, unique per incarnation so a restart is told apart
    parent_pid: int
    endpoint: str
    config: PipelineConfig
    ring: RingLayout | None = None  # workers attach it; inference attaches once told
    model_input: ModelInput | None = None


def pack(args: ChildArgs) -> bytes:
    return msgspec.msgpack.encode(args)


def unpack(blob: bytes) -> ChildArgs:
    return msgspec.msgpack.decode(blob, type=ChildArgs)
