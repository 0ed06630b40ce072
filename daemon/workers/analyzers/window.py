"""A sliding window of a stream's recent audio for models that need seconds of context:
the last `window_s` at the model's rate, released once per `hop_s` of new audio."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from daemon.workers.analyzers.base import WorkItem
from daemon.workers.analyzers.following import Followed, at_rate


@dataclass(slots=True)
class Window:
    samples: torch.Tensor  # the window's audio at the model rate
    start: float  # media time of its first sample
    end: float


@dataclass(slots=True)
class _Stream:
    start: float  # media time of buffer[0]
    buffer: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    fresh: int = 0  # samples added since the window was last released


class SlidingWindows:
    """Per stream, bounded: at most `window_s` of audio per stream, at most `limit`
    streams. A stream that jumps (seq gap, moved worker) starts an empty window."""

    def __init__(self, rate: int, window_s: float, hop_s: float, limit: int = 1024) -> None:
        self.rate = rate
        self.size = round(window_s * rate)
        self.hop = round(hop_s * rate)
        self._streams: Followed[_Stream] = Followed(lambda item: _Stream(item.pts), limit)

    def push(self, item: WorkItem) -> Window | None:
        """Add the chunk; the window when `hop_s` of new audio has come since the last."""
        s = self._streams.state_for(item)
        samples = at_rate(item.tensor.float(), item.rate, self.rate)
        joined = torch.cat([s.buffer, samples])
        drop = max(0, joined.numel() - self.size)
        s.buffer = joined[drop:].clone()
        s.start += drop / self.rate
        s.fresh += samples.numel()
        if s.fresh < self.hop:
            return None
        s.fresh = 0
        return Window(s.buffer, s.start, s.start + s.buffer.numel() / self.rate)
