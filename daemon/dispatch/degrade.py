"""The overload policy: when the workers cannot hold every live stream, the lowest
priority streams lose analysis fps first, instead of every stream lagging.

Overloaded means video items were dropped as stale (older than their stream's latency
objective) in the last evaluation period. Audio drops do not count: lowering a stream's
video fps gives the audio workers nothing back, so a stuck or slow audio pool is left to
its own drop counters instead of costing every stream its video analysis.

Each period with drops halves the analysis fps of one stream: the lowest `priority`, and
among equals the one analysed fastest, never below its floor (`min_fps`, default a
quarter of `fps`). After `CALM_S` without a stale drop, the highest priority degraded
stream gets twice its fps back, up to its configured rate; if that overloads the workers
again, it is lowered again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from daemon.config import StreamConfig
from daemon.core.metrics import Metrics

log = logging.getLogger("degrade")
EVAL_S = 2.0
CALM_S = 15.0


@dataclass
class _Rate:
    configured: float
    floor: float
    priority: int
    current: float


class Degrader:
    def __init__(
        self,
        streams: list[StreamConfig],
        metrics: Metrics,
        set_fps: Callable[[str, float], None],
        on_change: Callable[[str, float, float, str], None],
        now: float,
    ) -> None:
        self.metrics = metrics
        self.set_fps = set_fps
        self.on_change = on_change
        self.rates: dict[str, _Rate] = {}
        for stream in streams:
            self.add(stream)
        self._stale = 0
        self._last_eval = now
        self._last_stale = now

    def add(self, stream: StreamConfig) -> None:
        """Watch a live stream with video (at start, or added by a reload)."""
        if stream.mode == "live" and stream.video:
            rate = _Rate(stream.fps, stream.min_fps or stream.fps / 4, stream.priority, stream.fps)
            self.rates[stream.id] = rate
            self.metrics.analysis_fps.labels(stream.id).set(rate.current)

    def current(self, stream: str) -> float | None:
        """The rate the policy gives the stream now (None: not a live video stream)."""
        rate = self.rates.get(stream)
        return rate.current if rate is not None else None

    def remove(self, stream: str) -> None:
        self.rates.pop(stream, None)

    def on_stale(self, stream: str, modality: str) -> None:
        if modality == "video":
            self._stale += 1

    def tick(self, now: float) -> None:
        if now - self._last_eval < EVAL_S:
            return
        self._last_eval = now
        if self._stale:
            self._last_stale = now
            self._degrade(f"{self._stale} items dropped as stale in {EVAL_S:g} s")
            self._stale = 0
        elif now - self._last_stale >= CALM_S:
            self._last_stale = now  # one step per calm period
            self._restore()

    def _degrade(self, reason: str) -> None:
        above = [(s, r) for s, r in self.rates.items() if r.current > r.floor]
        if not above:
            return
        stream, rate = min(above, key=lambda sr: (sr[1].priority, -sr[1].current))
        self._apply(stream, rate, max(rate.floor, rate.current / 2), "down", reason)

    def _restore(self) -> None:
        below = [(s, r) for s, r in self.rates.items() if r.current < r.configured]
        if not below:
            return
        stream, rate = max(below, key=lambda sr: (sr[1].priority, -sr[1].current))
        reason = f"no stale drops for {CALM_S:g} s"
        self._apply(stream, rate, min(rate.configured, rate.current * 2), "up", reason)

    def _apply(self, stream: str, rate: _Rate, fps: float, direction: str, reason: str) -> None:
        log.warning(
            "stream %s (priority %d): analysis fps %g -> %g (%s)",
            stream,
            rate.priority,
            rate.current,
            fps,
            reason,
        )
        rate.current = fps
        self.set_fps(stream, fps)
        self.metrics.analysis_fps.labels(stream).set(fps)
        self.metrics.degrade_actions.labels(stream, direction).inc()
        self.on_change(stream, fps, rate.configured, reason)
