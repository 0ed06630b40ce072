"""Pick the frames the analysis fps needs, before any of them is converted."""

from __future__ import annotations


class AnalysisRate:
    """The analysis fps of a stream. Another thread may change it while decoding runs
    (tandemd lowers it when the workers cannot keep up); a float store is atomic."""

    def __init__(self, fps: float) -> None:
        self.fps = fps


class FpsSampler:
    """Keeps a frame when its media time reaches the next due slot of the analysis rate."""

    def __init__(self, rate: float | AnalysisRate) -> None:
        self.rate = rate if isinstance(rate, AnalysisRate) else AnalysisRate(rate)
        self._next_due: float | None = None

    @property
    def interval(self) -> float:
        return 1.0 / self.rate.fps

    def keep(self, t: float) -> bool:
        if self._next_due is None:
            self._next_due = t
        # Half a source-frame of tolerance: 30 fps sampled to 10 fps keeps every third frame.
        if t + 1e-3 < self._next_due:
            return False
        self._next_due += self.interval
        if self._next_due <= t:  # a gap in the source: restart the grid rather than burst
            self._next_due = t + self.interval
        return True
