"""A one-line progress display per run, only when a person is watching a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, streams, stream: TextIO = sys.stderr) -> None:
        self.streams = streams
        self.out = stream
        self.enabled = stream.isatty()
        self.started = time.monotonic()

    def update(self) -> None:
        if not self.enabled:
            return
        elapsed = max(1e-6, time.monotonic() - self.started)
        parts = []
        for s in self.streams:
            total = s.total or s.info.frames
            done = s.published
            pct = f" ({100 * done / total:.0f}%)" if total else ""
            drops = f" dropped {s.dropped}" if s.dropped else ""
            parts.append(f"{s.id} {done}/{total or '?'}{pct} {done / elapsed:.1f} fps{drops}")
        self.out.write("\r\033[K" + " | ".join(parts))
        self.out.flush()

    def close(self) -> None:
        if self.enabled:
            self.update()
            self.out.write("\n")
            self.out.flush()
