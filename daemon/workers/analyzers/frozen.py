"""Frozen frames, as FFmpeg's freezedetect decides them.

Each frame is compared with a reference: the first frame of the current still run. The
mean absolute difference over the Y, U and V planes (4:2:0), in 0..1 of full scale, at
most `noise` means the frame is still (`frozen`); otherwise it becomes the new
reference. A still run is a freezedetect interval once it has lasted `duration_s`:
`confirmed`. `since` is the reference's time, so `daemon.workers.analyzers.intervals.runs` rebuilds
freezedetect's intervals from the per-frame outputs.

`noise` defaults to 0.003, not freezedetect's 0.001: an H.264 keyframe re-quantises a
still picture by 0.001-0.0033 (measured at 640x360, crf 18-23), which at 0.001 would
split a frozen picture at every keyframe into runs too short to count at 5 fps; 0.003
holds most (a noisy picture at crf 23 can reach 0.0033: raise `noise` for such sources).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.pixels import Planes, mean_abs_diff, yuv420
from daemon.workers.analyzers.specs import FrozenOptions
from daemon.workers.analyzers.state import PerStream, continues


@dataclass(slots=True)
class _Reference:
    seq: int  # the stream's latest frame, for gap detection
    pts: float
    since: float  # the reference frame's time
    planes: Planes


class FrozenAnalyzer:
    name: ClassVar[str] = "frozen"
    modality: ClassVar[Modality] = "video"

    def __init__(self, options: FrozenOptions | None = None) -> None:
        self.options = options or FrozenOptions()
        self._refs: PerStream[_Reference] = PerStream()

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        planes = yuv420(item.array)
        ref = self._refs.get(item.stream)
        usable = (
            ref is not None
            and ref.planes[0].shape == planes[0].shape
            and continues(ref.seq, ref.pts, item.seq, item.pts, self.options.max_gap_s)
        )
        if ref is None or not usable:
            self._refs.put(item.stream, _Reference(item.seq, item.pts, item.pts, planes))
            return {"frozen": False, "mafd": None, "since": None, "run_s": 0.0, "confirmed": False}
        mafd = mean_abs_diff(planes, ref.planes) / 256  # freezedetect's scale
        frozen = mafd <= self.options.noise
        if frozen:
            ref.seq, ref.pts = item.seq, item.pts
        else:
            self._refs.put(item.stream, _Reference(item.seq, item.pts, item.pts, planes))
        run_s = item.pts - ref.since if frozen else 0.0
        return {
            "frozen": frozen,
            "mafd": round(mafd, 6),
            "since": ref.since if frozen else None,
            "run_s": round(run_s, 6),
            "confirmed": frozen and run_s >= self.options.duration_s,
        }
