"""The per-frame result message that subscribers and the JSONL file receive (docs/results.md)."""

from __future__ import annotations

from typing import Any

import msgspec

from pipeless.protocol.messages import Detection, FilterFailure


class FrameResult(msgspec.Struct, omit_defaults=True):
    stream: str
    frame: int
    pts: float
    width: int
    height: int
    detections: list[Detection]
    data: dict[str, Any] = {}
    errors: list[FilterFailure] = []


encode_json = msgspec.json.Encoder().encode
decode_json = msgspec.json.Decoder(FrameResult).decode
