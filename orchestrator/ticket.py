"""The orchestrator's record of one frame in flight: where it is and what it has gathered."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pipeless.protocol.messages import Detection, FilterFailure, SlotHandle


@dataclass
class Ticket:
    handle: SlotHandle
    stream: int  # index into the run's streams
    frame: int  # decode index, from 0
    pts: float
    width: int
    height: int
    decoded_at: float = field(default_factory=time.monotonic)
    stage: int = 0  # index into the plan
    sent_at: float = 0.0  # when the current stage was handed to a child
    detections: list[Detection] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    failures: list[FilterFailure] = field(default_factory=list)
