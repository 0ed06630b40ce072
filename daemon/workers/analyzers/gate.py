"""The motion gate of a model-backed analyzer: a cascade that spends a forward only on
frames that changed. Per stream it keeps a coarse copy of the last frame; a frame goes
to the model when enough of it changed, when the stream has no result yet (first frame,
or after a gap), or when its last forward is older than `refresh_s`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from daemon.workers.analyzers.base import WorkItem
from daemon.workers.analyzers.state import PerStream, continues

STEP = 4  # compare every 4th pixel of every 4th row: 1/16 of the work, same answer


@dataclass(slots=True)
class _Seen:
    seq: int
    pts: float
    coarse: torch.Tensor
    last_run_pts: float


class MotionGate:
    def __init__(self, min_score: float, pixel_threshold: int, refresh_s: float) -> None:
        self.min_score = min_score
        self.pixel_threshold = pixel_threshold
        self.refresh_s = refresh_s
        self._seen: PerStream[_Seen] = PerStream()

    def wants(self, item: WorkItem, has_result: bool) -> bool:
        """Whether `item` goes to the model; call in stream order, once per item."""
        coarse = item.tensor[::STEP, ::STEP]
        seen = self._seen.get(item.stream)
        run = (
            not has_result
            or seen is None
            or seen.coarse.shape != coarse.shape
            or not continues(seen.seq, seen.pts, item.seq, item.pts, max_gap_s=self.refresh_s)
            or item.pts - seen.last_run_pts >= self.refresh_s
            or self._changed(seen.coarse, coarse) > self.min_score
        )
        last_run = item.pts if run or seen is None else seen.last_run_pts
        self._seen.put(item.stream, _Seen(item.seq, item.pts, coarse, last_run))
        return run

    def _changed(self, before: torch.Tensor, now: torch.Tensor) -> float:
        diff = torch.maximum(before, now) - torch.minimum(before, now)
        changed = diff.amax(dim=2) > self.pixel_threshold
        return torch.count_nonzero(changed).item() / changed.numel()
