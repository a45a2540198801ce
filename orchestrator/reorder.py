"""Per-stream frame order, restored after stages that finish frames out of order."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class OrderGate(Generic[T]):
    """Releases items strictly by frame index, skipping indices known never to come (dropped frames).

    Used twice: before outputs and results (every stream's frames leave in
    order) and in front of each stateful filter (it sees each stream's frames
    in order). A dropped frame is `skip`ped so it never stalls what follows.
    """

    def __init__(self, start: int = 0) -> None:
        self.next = start
        self._held: dict[int, T] = {}
        self._skipped: set[int] = set()

    def push(self, index: int, item: T) -> None:
        if index < self.next or index in self._held:
            raise ValueError(f"frame {index} arrived twice (next expected {self.next})")
        self._held[index] = item

    def skip(self, index: int) -> None:
        if index >= self.next:
            self._skipped.add(index)

    def pop_ready(self) -> list[T]:
        ready: list[T] = []
        while True:
            if self.next in self._held:
                ready.append(self._held.pop(self.next))
            elif self.next in self._skipped:
                self._skipped.discard(self.next)
            else:
                return ready
            self.next += 1

    @property
    def waiting(self) -> int:
        return len(self._held)
