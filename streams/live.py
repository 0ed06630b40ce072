"""A stream over its whole life: sessions of a source, reconnected with backoff.

`run_stream` yields the items of every session on one media timeline, and events that
say what happened to the source in between. A live source is reopened after an error
or its end, forever, waiting an exponential backoff with jitter between attempts; a
file ends at its end (or starts over, with `loop`) and fails on an error.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from streams.decode import SourceError
from streams.emit import Emitter
from streams.sampling import AnalysisRate
from streams.source import Source
from streams.timeline import MediaClock
from streams.types import MediaItem, SourceSpec, SourceStats

log = logging.getLogger("streams")


@dataclass(frozen=True, slots=True)
class Opened:
    """A session opened; which modalities it carries."""

    video: bool
    audio: bool


@dataclass(frozen=True, slots=True)
class Interrupted:
    """A live session failed or ended; the next attempt comes after `retry_in_s`."""

    reason: str
    opened: bool  # False: the source could not be opened at all
    attempt: int  # consecutive attempts without media, this one included
    retry_in_s: float


@dataclass(frozen=True, slots=True)
class Finished:
    """The stream is over: a file's end, a non-live failure (`error` set), or a stop."""

    reason: str  # "eof", "error" or "stopped"
    error: str | None = None


Event = Opened | Interrupted | Finished


class Backoff:
    """Exponential backoff with equal jitter: the n-th wait is in [d/2, d], d = min·2^n."""

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.min_s, self.max_s = min_s, max_s
        self.attempt = 0
        self._rng = rng if rng is not None else random.Random()

    def next(self) -> float:
        ceiling = min(self.max_s, self.min_s * 2**self.attempt)
        self.attempt += 1
        return float(ceiling / 2 + self._rng.uniform(0, ceiling / 2))

    def reset(self) -> None:
        self.attempt = 0


def run_stream(
    spec: SourceSpec,
    stats: SourceStats,
    stop: threading.Event,
    rate: AnalysisRate | None = None,
) -> Iterator[MediaItem | Event]:
    """Every session of the stream until it finishes or `stop` is set. `rate`, when
    given, is the analysis fps, which the caller may change while this runs."""
    clock, emitter = MediaClock(), Emitter(spec, stats, rate)
    backoff = Backoff(spec.reconnect_min_s, spec.reconnect_max_s)
    last_media: float | None = None  # monotonic time of the latest item
    while not stop.is_set():
        source = Source(spec, stats, clock, emitter)
        opened, error, got_media = False, None, False
        try:
            # A live stream's media time goes on through the outage; a file's does not.
            source.open(last_media if spec.live else None)
            opened = True
            yield Opened(source.has_video, source.has_audio)
            for item in source.items():
                last_media, got_media = time.monotonic(), True
                backoff.reset()
                yield item
                if stop.is_set():
                    break
        except SourceError as exc:
            error = str(exc)
        finally:
            source.close()
        if stop.is_set():
            break
        if not spec.live:
            if error is None and spec.loop and got_media:
                continue
            yield from emitter.flush()
            yield Finished("eof") if error is None else Finished("error", error)
            return
        delay = backoff.next()
        reason = error or f"stream {spec.stream_id!r} ({spec.url}): the source ended"
        yield Interrupted(reason, opened, backoff.attempt, delay)
        stop.wait(delay)
        stats.reconnects += 1
    yield from emitter.flush()
    yield Finished("stopped")
