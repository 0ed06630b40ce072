"""Media time: seconds from the stream's first frame, shared by its audio and video."""

from __future__ import annotations


class MediaClock:
    """Maps source timestamps (seconds) to media time from the first timestamp seen.

    The origin is the container's start time when it has one (the earliest stream),
    otherwise the first decoded frame of any kind, so audio and video share one zero.
    """

    def __init__(self, origin: float | None = None) -> None:
        self._origin = origin

    def media_time(self, source_seconds: float) -> float:
        if self._origin is None:
            self._origin = source_seconds
        return max(0.0, source_seconds - self._origin)
