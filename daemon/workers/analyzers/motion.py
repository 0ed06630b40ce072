"""Motion: the share of pixels that changed since the stream's previous frame, and the
boxes around the regions that changed, with OpenCV (boxes by connected components on
a coarse grid, which is cheap)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.pixels import changed_mask
from daemon.workers.analyzers.specs import MotionOptions
from daemon.workers.analyzers.state import PerStream, continues


@dataclass(slots=True)
class _Previous:
    seq: int
    pts: float
    frame: np.ndarray
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
        frame = item.array
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
        diff = cv2.absdiff(frame, prev.frame)
        changed = changed_mask(diff, self.options.pixel_threshold)
        score = cv2.countNonZero(changed) / changed.size
        moving = score > self.options.min_score
        if not moving:  # still since the previous frame: the run began there at the latest
            current.still_since = prev.still_since if prev.still_since is not None else prev.pts
        return {
            "score": round(score, 6),
            "mean_diff": round(sum(cv2.mean(diff)[:3]) / 3 / 255.0, 6),
            "moving": moving,
            "boxes": self._boxes(changed) if moving else [],
            "still_since": current.still_since,
        }

    def _boxes(self, changed: np.ndarray) -> list[JsonValue]:
        """Boxes [x0, y0, x1, y1] (0..1) around connected changed cells, largest first."""
        cell = self.options.cell
        h, w = changed.shape
        cells = _any_per_cell(changed, cell)
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


def _any_per_cell(mask: np.ndarray, cell: int) -> np.ndarray:
    """1 for each cell x cell block with a nonzero pixel (partial blocks at the right and
    bottom edges count), as a uint8 grid: a max over each row's cells, then over each
    column's (OpenCV's reduce; NumPy's max over small axes is several times slower)."""
    h, w = mask.shape
    gh, gw = -(-h // cell), -(-w // cell)
    if (gh * cell, gw * cell) != (h, w):
        mask = cv2.copyMakeBorder(mask, 0, gh * cell - h, 0, gw * cell - w, cv2.BORDER_CONSTANT)
    across = cv2.reduce(mask.reshape(-1, cell), 1, cv2.REDUCE_MAX).reshape(gh * cell, gw)
    down = np.ascontiguousarray(across.T).reshape(-1, cell)
    grid: np.ndarray = cv2.reduce(down, 1, cv2.REDUCE_MAX).reshape(gw, gh).T
    return np.ascontiguousarray(grid)
