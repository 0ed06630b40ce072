"""Bounded per-stream state for analyzers that look across items."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

T = TypeVar("T")


class PerStream(Generic[T]):
    """Least-recently-used map of stream id to state, at most `limit` streams."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._items: OrderedDict[str, T] = OrderedDict()

    def get(self, stream: str) -> T | None:
        value = self._items.get(stream)
        if value is not None:
            self._items.move_to_end(stream)
        return value

    def put(self, stream: str, value: T) -> None:
        self._items[stream] = value
        self._items.move_to_end(stream)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)


def continues(prev_seq: int, prev_pts: float, seq: int, pts: float, max_gap_s: float) -> bool:
    """Whether a frame continues its stream's previous one: stateful analyzers reset on a
    jump back in seq or pts (a restarted or rewound stream) or a gap over `max_gap_s`.
    A skipped seq alone (a live frame dropped under backpressure) is no reset."""
    return seq > prev_seq and prev_pts < pts <= prev_pts + max_gap_s
