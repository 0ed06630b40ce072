"""Motion: the share of pixels that changed since the stream's previous frame, with torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from daemon.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.specs import MotionOptions
from daemon.workers.analyzers.state import PerStream


@dataclass(slots=True)
class _Previous:
    pts: float
    frame: torch.Tensor


class MotionAnalyzer:
    """score: fraction of pixels whose largest channel change exceeds the threshold (0..1);
    mean_diff: mean absolute change (0..1). Both None for a stream's first frame."""

    name: ClassVar[str] = "motion"
    modality: ClassVar[Modality] = "video"

    def __init__(self, options: MotionOptions | None = None) -> None:
        self.options = options or MotionOptions()
        self._previous: PerStream[_Previous] = PerStream()

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        frame = item.tensor
        prev = self._previous.get(item.stream)
        self._previous.put(item.stream, _Previous(item.pts, frame))
        if (
            prev is None
            or prev.frame.shape != frame.shape
            or item.pts - prev.pts > self.options.max_gap_s
        ):
            return {"score": None, "mean_diff": None}
        # uint8 absolute difference without widening: max - min never wraps.
        diff = torch.maximum(frame, prev.frame) - torch.minimum(frame, prev.frame)
        per_pixel = diff.amax(dim=2)
        changed = torch.count_nonzero(per_pixel > self.options.pixel_threshold).item()
        return {
            "score": round(changed / per_pixel.numel(), 6),
            "mean_diff": round(diff.float().mean().item() / 255.0, 6),
        }
