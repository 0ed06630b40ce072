"""Event rules evaluated on one stream's results in media order, both modalities together.

Fusion feeds a window's results sorted by pts once the window is published, so each
result is judged against the latest state of every analyzer of both modalities at that
media time. Boundaries have the resolution of items (a frame's pts, an audio chunk's
start), refined where an analyzer reports the exact time a state began: black and
frozen's `since`, motion's `still_since`, silence's `silence_starts`/`silence_ends`,
clipping's `clipping_starts`/`clipping_ends`, vad's `speech_starts`/`speech_ends`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from daemon.fusion.rules import AllOf, AnyOf, Condition, EventRule, Node, leaves
from daemon.wire.protocol import Result

EVENT_SCHEMA = 1
HISTORY = 64  # ended events kept per stream (for summaries)


@dataclass(frozen=True)
class Still:
    """`field` holds when the picture became still (none while it moves); `value` is what
    the output reads on a still picture: a condition that turns to its verdict on that
    value turned when the picture became still."""

    field: str
    value: object


# (analyzer, output) -> where the analyzer says when the output's current truth began:
# "since" (a field holding the run's start), (starts list, ends list), or Still.
BOUNDARY_HINTS: dict[tuple[str, str], str | tuple[str, str] | Still] = {
    ("black", "black"): "since",
    ("black", "confirmed"): "since",
    ("frozen", "frozen"): "since",
    ("frozen", "confirmed"): "since",
    ("motion", "score"): Still("still_since", 0.0),
    ("motion", "moving"): Still("still_since", False),
    ("silence", "silent"): ("silence_starts", "silence_ends"),
    ("clipping", "clipping"): ("clipping_starts", "clipping_ends"),
    ("vad", "speech"): ("speech_starts", "speech_ends"),
}

Outputs = dict[str, dict[str, Any]]


class _Leaf:
    def __init__(self, cond: Condition) -> None:
        self.cond = cond
        self.raw = False
        self.since = 0.0
        self.hint = BOUNDARY_HINTS.get((cond.analyzer, cond.output))
        # The analyzer's latest reported start and end times (lists hints): an end is
        # often reported a chunk before the output itself turns (decided in that chunk).
        self.reported: dict[bool, float] = {}

    def step(self, latest: Outputs, result: Result, t: float) -> tuple[bool, float]:
        if self.cond.analyzer in result.outputs:  # else only time moved on
            self._remember(result)
            value = latest[self.cond.analyzer].get(self.cond.output)
            raw = _compare(self.cond, value)
            if raw is not None and raw != self.raw:
                self.raw = raw
                self.since = max(self.since, self._boundary(result, value, t))
        held = t - self.since >= self.cond.for_s - 1e-9
        return self.raw and held, self.since

    def _remember(self, result: Result) -> None:
        if not isinstance(self.hint, tuple):
            return
        outputs = result.outputs[self.cond.analyzer]
        for truthy, key in ((True, self.hint[0]), (False, self.hint[1])):
            times = outputs.get(key)
            if isinstance(times, list) and times and _number(times[-1]):
                self.reported[truthy] = float(times[-1])

    def _boundary(self, result: Result, value: Any, t: float) -> float:
        """When the new state began: the analyzer's own time if it says, else `t`."""
        if self.hint == "since":
            outputs = result.outputs.get(self.cond.analyzer, {})
            since = outputs.get("since")
            if bool(value) and _number(since):
                return min(float(since), t)  # type: ignore[arg-type]
            return t
        if isinstance(self.hint, Still):
            still = result.outputs.get(self.cond.analyzer, {}).get(self.hint.field)
            if _number(still) and self.raw == _compare(self.cond, self.hint.value):
                return min(float(still), t)  # type: ignore[arg-type]
            return t
        reported = self.reported.get(bool(value))
        if reported is not None and reported >= self.since:  # this run's, not an older one
            return reported  # may lie inside the chunk, after its pts
        return t


class _Tree:
    """A compiled condition tree: each node gives (value, since its value holds)."""

    def __init__(self, node: Node) -> None:
        self.leaf = _Leaf(node) if isinstance(node, Condition) else None
        self.kind = "all" if isinstance(node, AllOf) else "any" if isinstance(node, AnyOf) else ""
        if isinstance(node, AllOf | AnyOf):
            self.children = [_Tree(n) for n in (node.all if isinstance(node, AllOf) else node.any)]
        elif self.leaf is None:
            self.kind = "not"
            self.children = [_Tree(node.not_)]  # type: ignore[union-attr]
        else:
            self.children = []

    def step(self, latest: Outputs, result: Result, t: float) -> tuple[bool, float]:
        if self.leaf is not None:
            return self.leaf.step(latest, result, t)
        states = [c.step(latest, result, t) for c in self.children]
        if self.kind == "not":
            return not states[0][0], states[0][1]
        true = [s for v, s in states if v]
        false = [s for v, s in states if not v]
        if self.kind == "all":
            return (True, max(true)) if not false else (False, min(false))
        return (True, min(true)) if true else (False, max(false))


@dataclass
class _RuleState:
    rule: EventRule
    when: _Tree
    until: _Tree | None
    start: float | None = None  # media time of the active event's start
    armed: bool = True  # `when` went false since the last event (needed with `until`)
    count: int = 0
    quiet: bool = False  # skip results of other analyzers (see EventEngine._advance)

    def __post_init__(self) -> None:
        conditions = [c for tree in (self.rule.when, self.rule.until) if tree
                      for _, c in leaves(tree)]  # fmt: skip
        self.analyzers = {c.analyzer for c in conditions}
        self.timed = any(c.for_s > 0 for c in conditions)  # leaves that turn with time


class EventEngine:
    """One stream's events. `step` results in pts order; collect messages with `take`."""

    def __init__(self, stream: str, rules: list[EventRule]) -> None:
        self.stream = stream
        self._rules = [
            _RuleState(r, _Tree(r.when), _Tree(r.until) if r.until else None) for r in rules
        ]
        self._latest: Outputs = {}
        self._messages: list[dict[str, Any]] = []
        self._touched: dict[str, dict[str, Any]] = {}  # events active during the window
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.last_t = 0.0

    def step(self, result: Result) -> None:
        for analyzer, outputs in result.outputs.items():
            self._latest[analyzer] = outputs
        t = max(self.last_t, result.pts)
        self.last_t = t
        for state in self._rules:
            self._advance(state, result, t)

    def _advance(self, state: _RuleState, result: Result, t: float) -> None:
        if state.quiet and state.analyzers.isdisjoint(result.outputs):
            return  # nothing it depends on changed, and no timer of its runs
        value, since = state.when.step(self._latest, result, t)
        state.armed = state.armed or not value
        if state.until is not None:  # stepped always, so it is current when needed
            ending, ended_at = state.until.step(self._latest, result, t)
        else:
            ending, ended_at = not value, since
        if state.start is None:
            if value and state.armed and t - since >= state.rule.min_duration_s - 1e-9:
                self._start(state, since)
        elif ending and t - ended_at >= state.rule.clear_after_s - 1e-9:
            self._end(state, max(ended_at, state.start), "rule")
        # Quiet: only a result of its analyzers can change anything (no timer pending).
        waiting = value and state.armed if state.start is None else ending
        state.quiet = not state.timed and not waiting

    def _start(self, state: _RuleState, start: float) -> None:
        state.start = max(0.0, start)
        state.armed = False
        state.count += 1
        message = self._message(state, "start", None, None)
        self._messages.append(message)
        self._touched[state.rule.name] = message

    def _end(self, state: _RuleState, end: float, reason: str) -> None:
        assert state.start is not None
        message = self._message(state, "end", end, reason)
        state.start = None
        self._messages.append(message)
        self._touched[state.rule.name] = message
        self.history.append(message)

    def _message(
        self, state: _RuleState, edge: str, end: float | None, reason: str | None
    ) -> dict[str, Any]:
        start = state.start if state.start is not None else 0.0
        return {
            "schema": EVENT_SCHEMA,
            "type": "event",
            "stream": self.stream,
            "name": state.rule.name,
            "id": f"{self.stream}/{state.rule.name}/{state.count}",
            "edge": edge,
            "start": round(start, 6),
            "end": None if end is None else round(end, 6),
            "duration_s": None if end is None else round(end - start, 6),
            "ended_by": reason,
            "at": time.time(),
        }

    def extend(self, messages: list[dict[str, Any]]) -> None:
        """Instant events from elsewhere (line crossings, zone entries: fusion/scene.py),
        published in order with the rules' own."""
        self._messages.extend(messages)

    def close(self, end: float) -> None:
        """The stream ended: every active event ends at `end`."""
        for state in self._rules:
            if state.start is not None:
                self._end(state, max(end, state.start), "stream_end")

    def take(self) -> list[dict[str, Any]]:
        out, self._messages = self._messages, []
        return out

    def window_events(self) -> list[dict[str, Any]]:
        """Events active at some time in the window just fed: name, start, end (null while
        active); then the list starts over with those still active."""
        out = [
            {"name": m["name"], "id": m["id"], "start": m["start"], "end": m["end"]}
            for m in self._touched.values()
        ]
        self._touched = {m["name"]: m for m in self.active()}
        return out

    def active(self) -> list[dict[str, Any]]:
        return [
            self._message(s, "start", None, None) | {"at": None}
            for s in self._rules
            if s.start is not None
        ]


def _compare(cond: Condition, value: Any) -> bool | None:
    """The condition on one output value; None when the value says nothing (missing)."""
    if value is None or isinstance(value, list | dict):
        return None
    op, ref = cond.op, cond.value
    if op == "is_true":
        return bool(value)
    if op == "is_false":
        return not bool(value)
    if op in ("eq", "ne"):
        equal = value == ref if not _number(value) else _number(ref) and value == ref
        return bool(equal) if op == "eq" else not equal
    if not _number(value) or not _number(ref):
        return None
    x, y = float(value), float(ref)  # type: ignore[arg-type]
    if math.isnan(x):
        return None
    return {"gt": x > y, "ge": x >= y, "lt": x < y, "le": x <= y}[op]


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)
