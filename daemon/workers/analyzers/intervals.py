"""Intervals of media time from per-frame outputs, as FFmpeg's detectors report them.

The black and frozen analyzers give each frame `since`: the time its run began, or None
outside a run. A run ends at the first frame that is not part of it (or at `end`, the
end of the last frame, for a run still open when the samples stop), and counts when it
lasted at least `min_duration_s`: blackdetect's black_start/black_end and
freezedetect's freeze_start/freeze_end. Plain booleans (motion's `moving`) go through
`flag_runs`. No torch here: fusion and tests use it as well as workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def runs(
    samples: Iterable[tuple[float, float | None]], end: float, min_duration_s: float = 0.0
) -> list[Interval]:
    """`samples` are (pts, since) in pts order; `end` closes a run still open at the end."""
    out: list[Interval] = []
    current: float | None = None
    for pts, since in samples:
        if current is not None and since != current:
            out.append(Interval(current, pts))
            current = None
        if since is not None and current is None:
            current = since
    if current is not None:
        out.append(Interval(current, end))
    return [i for i in out if i.duration >= min_duration_s]


def flag_runs(
    samples: Iterable[tuple[float, bool]], end: float, min_duration_s: float = 0.0
) -> list[Interval]:
    """Runs of frames whose flag is true: from the first such frame to the next false."""
    started: float | None = None
    marked: list[tuple[float, float | None]] = []
    for pts, flag in samples:
        started = (started if started is not None else pts) if flag else None
        marked.append((pts, started))
    return runs(marked, end, min_duration_s)
