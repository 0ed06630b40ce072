"""Clipping: samples at or above a level near full scale, and runs of them.

Audio reaches workers resampled, so a clipped source's flat tops arrive as runs of
samples near full scale (with a little resampler ringing), not as exactly equal
values: a run of `min_run` or more samples at or above the threshold is one clip.
"""

from __future__ import annotations

from typing import ClassVar

from daemon.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.runs import amplitude, runs
from daemon.workers.analyzers.specs import ClippingOptions


class ClippingAnalyzer:
    """clipped_ratio (share of samples at or above the threshold), clipped_samples,
    clips (runs of at least min_run such samples), clipping (clips > 0)."""

    name: ClassVar[str] = "clipping"
    modality: ClassVar[Modality] = "audio"

    def __init__(self, options: ClippingOptions | None = None) -> None:
        self.options = options or ClippingOptions()
        self._threshold = amplitude(self.options.threshold_dbfs)

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        hot = item.tensor.abs() >= self._threshold
        count = int(hot.sum())
        clips = 0
        if count >= self.options.min_run:
            starts, ends = runs(hot)
            clips = int(((ends - starts) >= self.options.min_run).sum())
        n = hot.numel()
        return {
            "clipped_ratio": round(count / n, 6) if n else 0.0,
            "clipped_samples": count,
            "clips": clips,
            "clipping": clips > 0,
        }
