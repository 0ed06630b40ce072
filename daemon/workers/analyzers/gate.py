"""The motion gate of a box or label analyzer (the model-backed ones, faces, persons,
plugins with `GateOptions`): a cascade that spends a forward only on frames that
changed. Per stream it keeps a coarse copy of the last frame; a frame goes to the
analyzer when enough of it changed, when the stream has no result yet (first frame, or
after a gap), or when its last run is older than `refresh_s`.

With regions on, a frame that goes to the model because part of it changed also gets
the region to look at: the box around the changed pixels, widened by a margin, to at
least `min_side` of the frame and to the frame's aspect ratio (so a model with a fixed
input size scales it evenly); None (the whole frame) when that box is over `max_area`
of the frame, or when the frame runs for another reason."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from daemon.workers.analyzers.base import WorkItem
from daemon.workers.analyzers.gate_options import GateOptions
from daemon.workers.analyzers.pixels import changed_mask
from daemon.workers.analyzers.state import PerStream, continues

STEP = 4  # compare every 4th pixel of every 4th row: 1/16 of the work, same answer

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, end exclusive


@dataclass(frozen=True, slots=True)
class RegionRule:
    margin: float = 0.1  # of the frame's side, added around the changed pixels
    min_side: float = 0.25  # a region is at least this share of each side
    max_area: float = 0.5  # a larger region: the whole frame runs


@dataclass(frozen=True, slots=True)
class Decision:
    run: bool
    region: Box | None = None  # where to look; None: the whole frame


@dataclass(slots=True)
class _Seen:
    seq: int
    pts: float
    coarse: np.ndarray
    last_run_pts: float


class MotionGate:
    def __init__(
        self,
        min_score: float,
        pixel_threshold: int,
        refresh_s: float,
        regions: RegionRule | None = None,
    ) -> None:
        self.min_score = min_score
        self.pixel_threshold = pixel_threshold
        self.refresh_s = refresh_s
        self.regions = regions
        self._seen: PerStream[_Seen] = PerStream()

    def decide(self, item: WorkItem, has_result: bool) -> Decision:
        """Whether `item` goes to the model, and where to look; call in stream order,
        once per item."""
        # A copy: a view would keep the whole frame (a ZeroMQ buffer) alive per stream.
        coarse = np.ascontiguousarray(item.array[::STEP, ::STEP])
        seen = self._seen.get(item.stream)
        changed = None
        run = (
            not has_result
            or seen is None
            or seen.coarse.shape != coarse.shape
            or not continues(seen.seq, seen.pts, item.seq, item.pts, max_gap_s=self.refresh_s)
            or item.pts - seen.last_run_pts >= self.refresh_s
        )
        if not run and seen is not None:
            changed = self._changed(seen.coarse, coarse)
            run = cv2.countNonZero(changed) / changed.size > self.min_score
        last_run = item.pts if run or seen is None else seen.last_run_pts
        self._seen.put(item.stream, _Seen(item.seq, item.pts, coarse, last_run))
        if not run or changed is None or self.regions is None:
            return Decision(run)
        height, width = item.array.shape[:2]
        return Decision(True, region_of(changed, width, height, self.regions))

    def _changed(self, before: np.ndarray, now: np.ndarray) -> np.ndarray:
        return changed_mask(cv2.absdiff(before, now), self.pixel_threshold)


def gate_for(options: GateOptions) -> MotionGate | None:
    """The gate the options ask for; None when the analyzer runs on every frame."""
    if options.gate == "none":
        return None
    rule = None
    if options.gate == "motion_regions":
        rule = RegionRule(
            options.gate_region_margin, options.gate_region_min_side, options.gate_region_max_area
        )
    return MotionGate(
        options.gate_min_score, options.gate_pixel_threshold, options.gate_refresh_s, rule
    )


def region_of(changed: np.ndarray, width: int, height: int, rule: RegionRule) -> Box | None:
    """The region around the changed cells of a coarse mask (see the module docstring)."""
    rows = np.flatnonzero(changed.any(axis=1))
    cols = np.flatnonzero(changed.any(axis=0))
    if rows.size == 0:
        return None
    # A coarse cell stands for the STEP x STEP pixels from its corner.
    x0, x1 = int(cols[0]) * STEP, min(width, (int(cols[-1]) + 1) * STEP)
    y0, y1 = int(rows[0]) * STEP, min(height, (int(rows[-1]) + 1) * STEP)
    share = max(
        (x1 - x0) / width + 2 * rule.margin,
        (y1 - y0) / height + 2 * rule.margin,
        rule.min_side,
    )
    if share * share > rule.max_area:
        return None
    w, h = round(share * width), round(share * height)
    left = min(max(0, round((x0 + x1 - w) / 2)), width - w)
    top = min(max(0, round((y0 + y1 - h) / 2)), height - h)
    return left, top, left + w, top + h
