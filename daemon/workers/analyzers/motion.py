"""Motion: the share of pixels that changed since the stream's previous frame, and the
boxes around the regions that changed, with torch (boxes by OpenCV's connected
components on a coarse grid, which is cheap)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np
import torch
from torch.nn import functional

from daemon.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.specs import MotionOptions
from daemon.workers.analyzers.state import PerStream, continues


@dataclass(slots=True)
class _Previous:
    seq: int
    pts: float
    frame: torch.Tensor
    still_since: float | None  # the first frame of the still run this frame is in


class MotionAnalyzer:
    """score: fraction of pixels whose largest channel change exceeds the threshold (0..1);
    mean_diff: mean absolute change (0..1); moving: score > min_score; boxes: regions that
    changed; still_since: while not moving, the time of the first frame of the still run
    (the motion stopped between the frame before it and it), else None. score and
    mean_diff are None for a stream's first frame (or after a gap)."""

    name: ClassVar[str] = "motion"
    modality: ClassVar[Modality] = "video"

    def __init__(self, options: MotionOptions | None = None) -> None:
        self.options = options or MotionOptions()
        self._previous: PerStream[_Previous] = PerStream()

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        frame = item.tensor
        prev = self._previous.get(item.stream)
        current = _Previous(item.seq, item.pts, frame, None)
        self._previous.put(item.stream, current)
        if (
            prev is None
            or prev.frame.shape != frame.shape
            or not continues(prev.seq, prev.pts, item.seq, item.pts, self.options.max_gap_s)
        ):
            return {
                "score": None,
                "mean_diff": None,
                "moving": False,
                "boxes": [],
                "still_since": None,
            }
        # uint8 absolute difference without widening: max - min never wraps.
        diff = torch.maximum(frame, prev.frame) - torch.minimum(frame, prev.frame)
        changed = diff.amax(dim=2) > self.options.pixel_threshold
        score = torch.count_nonzero(changed).item() / changed.numel()
        moving = score > self.options.min_score
        if not moving:  # still since the previous frame: the run began there at the latest
            current.still_since = prev.still_since if prev.still_since is not None else prev.pts
        return {
            "score": round(score, 6),
            "mean_diff": round(diff.float().mean().item() / 255.0, 6),
            "moving": moving,
            "boxes": self._boxes(changed) if moving else [],
            "still_since": current.still_since,
        }

    def _boxes(self, changed: torch.Tensor) -> list[JsonValue]:
        """Boxes [x0, y0, x1, y1] (0..1) around connected changed cells, largest first."""
        cell = self.options.cell
        h, w = changed.shape
        grid = functional.max_pool2d(changed[None, None].float(), cell, ceil_mode=True)[0, 0]
        cells = grid.to(torch.uint8).numpy()
        n, _, stats, _ = cv2.connectedComponentsWithStats(cells, connectivity=8)
        order = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[: self.options.max_boxes] + 1
        boxes: list[JsonValue] = []
        for i in order[: n - 1]:
            x, y, bw, bh = (int(v) for v in stats[i, :4])
            boxes.append(
                [
                    round(x * cell / w, 4),
                    round(y * cell / h, 4),
                    round(min((x + bw) * cell, w) / w, 4),
                    round(min((y + bh) * cell, h) / h, 4),
                ]
            )
        return boxes
