"""A stream's health: an explicit state machine with its allowed transitions.

    starting ──► running ◄──► stalled
        │          │             │
        ▼          ▼             ▼
      failed ◄─► reconnecting ◄──┘        any state ──► stopped (terminal)

`starting` until the first media; `running` while media flows; `stalled` when none came
for the stall timeout; `reconnecting` while a live source is being reopened after an
error or its end; `failed` when an open or read failed (a live source goes on to
`reconnecting`, a file stays failed); `stopped` when asked to stop or a file ended.
An illegal transition raises: it is a bug in whoever drives the machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

State = Literal["starting", "running", "stalled", "reconnecting", "failed", "stopped"]
STATES: tuple[State, ...] = get_args(State)

ALLOWED: dict[State, frozenset[State]] = {
    "starting": frozenset({"running", "stalled", "reconnecting", "failed", "stopped"}),
    "running": frozenset({"stalled", "reconnecting", "failed", "stopped"}),
    "stalled": frozenset({"running", "reconnecting", "failed", "stopped"}),
    "reconnecting": frozenset({"running", "stalled", "failed", "stopped"}),
    "failed": frozenset({"reconnecting", "stopped"}),
    "stopped": frozenset(),
}


class IllegalTransitionError(Exception):
    """A transition the state machine does not allow."""


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change of one stream, with why it happened."""

    stream_id: str
    previous: State
    state: State
    reason: str
    at: float  # Unix seconds


class Health:
    """The current state of one stream; `to()` moves it and tells `on_change`."""

    def __init__(
        self,
        stream_id: str,
        on_change: Callable[[Transition], None] = lambda t: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stream_id = stream_id
        self.state: State = "starting"
        self._on_change = on_change
        self._clock = clock

    def to(self, state: State, reason: str) -> Transition | None:
        """Move to `state`; a move to the current state is a no-op and returns None."""
        if state == self.state:
            return None
        if state not in ALLOWED[self.state]:
            raise IllegalTransitionError(
                f"stream {self.stream_id!r}: {self.state} -> {state} is not allowed ({reason})"
            )
        change = Transition(self.stream_id, self.state, state, reason, self._clock())
        self.state = state
        self._on_change(change)
        return change
