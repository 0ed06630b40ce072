"""Cross-modal cascades: an event rule that acts when its event starts.

    [[events.actions]]  do = "raise_fps", fps = 15, for_s = 30
    [[events.actions]]  do = "enable_analyzer", analyzer = "transcribe", for_s = 60

`raise_fps` asks for the stream's video analysis fps to go up for `for_s` seconds (then
back); `enable_analyzer` switches an on-demand analyzer (`workers.*.on_demand`) on for the
stream for `for_s` (e.g. a person or voice activity wakes speech recognition). The hooks
that carry them out are the pipeline's (`request_fps`, `request_analyzer`). The same
action started again while it runs is extended, not applied twice. Every stream has a ceiling:
at most `fusion.max_actions_per_minute` actions started per rolling minute; the rest are
refused. Both outcomes are counted (`tandem_actions_total{outcome}`), and so is every
expiry.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

CEILING_WINDOW_S = 60.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RaiseFps(_Strict):
    do: Literal["raise_fps"]
    fps: float = Field(gt=0, le=120)
    for_s: float = Field(30.0, gt=0, le=86400)


class EnableAnalyzer(_Strict):
    do: Literal["enable_analyzer"]
    analyzer: str = Field(min_length=1)
    for_s: float = Field(60.0, gt=0, le=86400)


Action = Annotated[RaiseFps | EnableAnalyzer, Field(discriminator="do")]


@dataclass
class _Running:
    stream: str
    action: RaiseFps | EnableAnalyzer
    reason: str
    until: float  # monotonic


class Cascades:
    """Carries out rule actions with a per-stream ceiling, and undoes them when due."""

    def __init__(
        self,
        per_minute: int,
        raise_fps: Callable[[str, float | None, str], None],
        enable: Callable[[str, str, bool, str], None],
        count: Callable[[str, str, str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self._raise_fps, self._enable, self._count, self._clock = raise_fps, enable, count, clock
        self._started: dict[str, deque[float]] = {}
        self._running: list[_Running] = []

    def on_event_start(
        self, stream: str, event: str, actions: list[RaiseFps | EnableAnalyzer]
    ) -> None:
        now = self._clock()
        recent = self._started.setdefault(stream, deque())
        while recent and now - recent[0] >= CEILING_WINDOW_S:
            recent.popleft()
        for action in actions:
            if len(recent) >= self.per_minute:
                self._count(stream, action.do, "refused")
                continue
            recent.append(now)
            self._count(stream, action.do, "done")
            running = next(
                (r for r in self._running if r.stream == stream and r.action == action), None
            )
            if running is not None:  # the same action again: it lasts longer, applied once
                running.until = now + action.for_s
                continue
            reason = f"event {event}"
            self._apply(stream, action, reason, on=True)
            self._running.append(_Running(stream, action, reason, now + action.for_s))

    def tick(self) -> None:
        """Undo the actions whose time is up."""
        now = self._clock()
        due = [r for r in self._running if r.until <= now]
        self._running = [r for r in self._running if r.until > now]
        for r in due:
            self._apply(r.stream, r.action, f"{r.reason} expired", on=False)
            self._count(r.stream, r.action.do, "expired")

    def _apply(self, stream: str, action: RaiseFps | EnableAnalyzer, reason: str, on: bool) -> None:
        if isinstance(action, RaiseFps):
            self._raise_fps(stream, action.fps if on else None, reason)
        else:
            self._enable(stream, action.analyzer, on, reason)

    def running(self, stream: str) -> list[str]:
        return [r.action.do for r in self._running if r.stream == stream]
