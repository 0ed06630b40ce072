"""Black frames, as FFmpeg's blackdetect decides them, on the frame's luma.

A pixel is black when its limited-range luma is at most 16 + pix_th x 219 (FFmpeg's
integer threshold); a frame is black when the share of black pixels reaches
picture_black_ratio_th. A run of black frames is a blackdetect interval once it has
lasted black_min_duration: `confirmed`. `since` is the run's first frame, so
`intervals.runs` (beside it) rebuilds blackdetect's intervals from the per-frame outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.pixels import luma
from daemon.workers.analyzers.specs import BlackOptions
from daemon.workers.analyzers.state import PerStream, continues


@dataclass(slots=True)
class _Run:
    seq: int
    pts: float
    since: float | None  # first frame of the current black run


class BlackAnalyzer:
    name: ClassVar[str] = "black"
    modality: ClassVar[Modality] = "video"

    def __init__(self, options: BlackOptions | None = None) -> None:
        self.options = options or BlackOptions()
        self._luma_threshold = int(16 + self.options.pixel_threshold * (235 - 16))
        self._runs: PerStream[_Run] = PerStream()

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        y = luma(item.array)
        # THRESH_BINARY_INV: 255 where y <= threshold, so the count is of black pixels.
        _, dark = cv2.threshold(y, self._luma_threshold, 255, cv2.THRESH_BINARY_INV)
        ratio = cv2.countNonZero(dark) / y.size
        black = ratio >= self.options.ratio_threshold
        prev = self._runs.get(item.stream)
        since: float | None = None
        if black:
            carried = prev is not None and continues(
                prev.seq, prev.pts, item.seq, item.pts, self.options.max_gap_s
            )
            since = prev.since if carried and prev is not None else None
            since = item.pts if since is None else since
        self._runs.put(item.stream, _Run(item.seq, item.pts, since))
        run_s = item.pts - since if since is not None else 0.0
        # blackdetect measures to the first frame after the run: at least this one's end.
        confirmed = black and run_s + item.duration >= self.options.min_duration_s
        return {
            "black": black,
            "ratio": round(ratio, 6),
            "since": since,
            "run_s": round(run_s, 6),
            "confirmed": confirmed,
        }
