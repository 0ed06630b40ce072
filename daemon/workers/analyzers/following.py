"""Per-stream state for audio analyzers that look across chunks, reset on discontinuity.

A stream's chunks reach one worker in order only while that worker lives: when a stream
moves to another worker, or items were lost, the next chunk does not continue the last
one. State carried over such a gap would be wrong (a VAD frame spanning a hole, loudness
gating over missing audio), so the state starts fresh instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
import torchaudio.functional as taf

from daemon.workers.analyzers.base import WorkItem
from daemon.workers.analyzers.state import PerStream

S = TypeVar("S")

# Chunks tile the timeline exactly; this absorbs float rounding of pts only.
PTS_TOLERANCE_S = 0.002


@dataclass(slots=True)
class _Entry(Generic[S]):
    state: S
    seq: int
    end: float  # media time where the last chunk ended
    rate: int


def chunk_end(item: WorkItem) -> float:
    return item.pts + item.tensor.numel() / item.rate


class Followed(Generic[S]):
    """Bounded map stream -> state; `state_for(item)` returns the stream's state, new
    when the item does not directly follow the stream's previous chunk (seq gap, pts
    jump, rate change) or the stream is new."""

    def __init__(self, new: Callable[[WorkItem], S], limit: int = 1024) -> None:
        self._new = new
        self._entries: PerStream[_Entry[S]] = PerStream(limit)

    def state_for(self, item: WorkItem) -> S:
        entry = self._entries.get(item.stream)
        if (
            entry is None
            or entry.rate != item.rate
            or item.seq != entry.seq + 1
            or abs(item.pts - entry.end) > PTS_TOLERANCE_S
        ):
            entry = _Entry(self._new(item), item.seq, item.pts, item.rate)
            self._entries.put(item.stream, entry)
        entry.seq = item.seq
        entry.end = chunk_end(item)
        return entry.state


def at_rate(samples: torch.Tensor, rate: int, target: int) -> torch.Tensor:
    """Samples resampled to `target` Hz with torchaudio (a no-op at the target rate).
    Chunk by chunk, so a few samples at each chunk edge see a truncated filter."""
    if rate <= 0:
        raise ValueError(f"audio item has no sample rate ({rate})")
    if rate == target:
        return samples
    out: torch.Tensor = taf.resample(samples, rate, target)
    return out
