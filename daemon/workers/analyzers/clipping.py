"""Clipping: samples at or above a level near full scale, and runs of them.

Audio reaches workers resampled, so a clipped source's flat tops arrive as runs of
samples near full scale (with a little resampler ringing), not as exactly equal
values: a run of `min_run` or more samples at or above the threshold is one clip.

Followed across chunks per stream, so boundaries lie inside a chunk, where the signal
changed: clipping begins at the first sample of a chunk's first clip when the chunk
before had none, and ends just after the last clip of the last chunk that had one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.following import Followed
from daemon.workers.analyzers.runs import amplitude, runs
from daemon.workers.analyzers.specs import ClippingOptions


@dataclass(slots=True)
class _Stream:
    last_clip_end: float | None = None  # media time the previous chunk's last clip ended


class ClippingAnalyzer:
    """clipped_ratio (share of samples at or above the threshold), clipped_samples,
    clips (runs of at least min_run such samples), clipping (clips > 0),
    clipping_starts and clipping_ends (media times clipping began and stopped, decided
    by this chunk: an end lies in the chunk before, after its last clip)."""

    name: ClassVar[str] = "clipping"
    modality: ClassVar[Modality] = "audio"

    def __init__(self, options: ClippingOptions | None = None) -> None:
        self.options = options or ClippingOptions()
        self._threshold = amplitude(self.options.threshold_dbfs)
        self._streams: Followed[_Stream] = Followed(lambda item: _Stream())

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        s = self._streams.state_for(item)
        hot = item.tensor.abs() >= self._threshold
        count = int(hot.sum())
        clips, first, last = self._clips(hot, count, item)
        began: list[JsonValue] = []
        ended: list[JsonValue] = []
        if first is not None and s.last_clip_end is None:
            began.append(round(first, 4))
        if clips == 0 and s.last_clip_end is not None:
            ended.append(round(s.last_clip_end, 4))
        s.last_clip_end = last
        n = hot.numel()
        return {
            "clipped_ratio": round(count / n, 6) if n else 0.0,
            "clipped_samples": count,
            "clips": clips,
            "clipping": clips > 0,
            "clipping_starts": began,
            "clipping_ends": ended,
        }

    def _clips(
        self, hot: torch.Tensor, count: int, item: WorkItem
    ) -> tuple[int, float | None, float | None]:
        """Clips in the chunk, the media time of the first's start and the last's end."""
        if count < self.options.min_run:
            return 0, None, None
        starts, ends = runs(hot)
        long = (ends - starts) >= self.options.min_run
        clips = int(long.sum())
        if not clips:
            return 0, None, None
        first = item.pts + int(starts[long][0]) / item.rate
        return clips, first, item.pts + int(ends[long][-1]) / item.rate
