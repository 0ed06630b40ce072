"""Scene cuts, as FFmpeg's scdet scores them: the mean absolute difference from the
previous frame over the Y, U and V planes (mafd), and the score min(mafd, |mafd -
previous mafd|), here in 0..1 of full scale (scdet's score / 100). A cut changes much
and suddenly; steady motion changes much but evenly, so its score stays low."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.pixels import Planes, mean_abs_diff, yuv420
from daemon.workers.analyzers.specs import SceneOptions
from daemon.workers.analyzers.state import PerStream, continues


@dataclass(slots=True)
class _Previous:
    seq: int
    pts: float
    planes: Planes
    mafd: float


class SceneAnalyzer:
    name: ClassVar[str] = "scene"
    modality: ClassVar[Modality] = "video"

    def __init__(self, options: SceneOptions | None = None) -> None:
        self.options = options or SceneOptions()
        self._previous: PerStream[_Previous] = PerStream()

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        planes = yuv420(item.array)
        prev = self._previous.get(item.stream)
        if (
            prev is None
            or prev.planes[0].shape != planes[0].shape
            or not continues(prev.seq, prev.pts, item.seq, item.pts, self.options.max_gap_s)
        ):
            self._previous.put(item.stream, _Previous(item.seq, item.pts, planes, 0.0))
            return {"score": None, "scene_change": False}
        mafd = mean_abs_diff(planes, prev.planes) / 256
        score = min(max(min(mafd, abs(mafd - prev.mafd)), 0.0), 1.0)
        self._previous.put(item.stream, _Previous(item.seq, item.pts, planes, mafd))
        return {"score": round(score, 6), "scene_change": score >= self.options.threshold}
