"""What fusion knows of one modality of one stream: which items are still out."""

from __future__ import annotations

import math
from collections import deque


class PendingItems:
    """Items of one modality held by tandemd (queued or at a worker), in arrival order.

    The frontier is the media time up to which every item has been answered or given up:
    the pts of the oldest item still out, else the end of the newest item received.
    """

    def __init__(self) -> None:
        self.present = True  # false when the source has no such modality
        self.ended = False
        self._pending: dict[int, float] = {}
        self._ends: dict[int, float] = {}
        self._order: deque[int] = deque()
        self._received_end = 0.0

    def add(self, seq: int, pts: float, duration: float) -> None:
        self._pending[seq] = pts
        self._ends[seq] = pts + duration
        self._order.append(seq)
        self._received_end = max(self._received_end, pts + duration)

    def settle(self, seq: int) -> bool:
        """Mark an item answered or lost; False when it was not out (a duplicate)."""
        self._ends.pop(seq, None)
        return self._pending.pop(seq, None) is not None

    def end_of(self, seq: int) -> float | None:
        """The media end of an item still out."""
        return self._ends.get(seq)

    def frontier(self) -> float:
        if not self.present:
            return math.inf
        while self._order and self._order[0] not in self._pending:
            self._order.popleft()
        if self._order:
            return self._pending[self._order[0]]
        return math.inf if self.ended else self._received_end

    @property
    def received_end(self) -> float:
        return self._received_end

    @property
    def outstanding(self) -> int:
        return len(self._pending)
