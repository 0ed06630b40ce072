"""The pure parts of ingest: the health state machine, the media clock, the backoff."""

from __future__ import annotations

import random

import pytest

from streams import STATES, Health, IllegalTransitionError, Transition
from streams.health import ALLOWED
from streams.live import Backoff
from streams.timeline import MPEGTS_WRAP_S, MediaClock


def test_health_reports_every_transition_and_refuses_illegal_ones() -> None:
    seen: list[Transition] = []
    health = Health("cam1", on_change=seen.append, clock=lambda: 42.0)
    health.to("running", "media flowing")
    assert health.to("running", "again") is None  # same state: nothing happens
    health.to("stalled", "no media for 5.0 s")
    health.to("reconnecting", "read failed")
    health.to("failed", "cannot open")
    with pytest.raises(IllegalTransitionError, match=r"'cam1': failed -> running"):
        health.to("running", "skipping reconnecting")
    health.to("stopped", "stopped by tandemd")
    with pytest.raises(IllegalTransitionError):
        health.to("starting", "stopped is final")
    assert [(t.previous, t.state) for t in seen] == [
        ("starting", "running"),
        ("running", "stalled"),
        ("stalled", "reconnecting"),
        ("reconnecting", "failed"),
        ("failed", "stopped"),
    ]
    assert all(t.stream_id == "cam1" and t.at == 42.0 for t in seen)


def test_every_state_can_stop_and_stopped_is_terminal() -> None:
    assert set(ALLOWED) == set(STATES)
    assert all("stopped" in ALLOWED[s] for s in STATES if s != "stopped")
    assert ALLOWED["stopped"] == frozenset()


def feed(clock: MediaClock, track: str, times: list[float], step: float) -> list[float]:
    return [clock.media_time("main", track, t, step) for t in times]


def test_clock_counts_from_the_container_start_shared_by_tracks() -> None:
    clock = MediaClock()
    clock.start_session()
    clock.set_origin("main", 10.0)
    assert feed(clock, "video", [10.0, 10.5], 0.5) == [0.0, 0.5]
    assert feed(clock, "audio", [10.2], 0.1) == [pytest.approx(0.2)]


def test_clock_carries_on_through_a_timestamp_restart() -> None:
    clock = MediaClock()
    clock.start_session()
    out = feed(clock, "video", [100.0, 100.1, 100.2, 3.0, 3.1], 0.1)
    assert out == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert clock.stats.jumps == 1 and clock.stats.wraps == 0


def test_clock_unwraps_the_33_bit_mpegts_counter() -> None:
    clock = MediaClock()
    clock.start_session()
    before = MPEGTS_WRAP_S - 0.1
    out = feed(clock, "video", [before - 0.1, before, 0.0, 0.1], 0.1)
    assert out == pytest.approx([0.0, 0.1, 0.2, 0.3])  # exact continuity, not a guess
    assert clock.stats.wraps == 1 and clock.stats.jumps == 0


def test_clock_new_session_continues_after_the_gap_and_never_goes_back() -> None:
    clock = MediaClock()
    clock.start_session()
    first = feed(clock, "video", [5.0, 5.1, 5.2], 0.1)
    clock.start_session(gap_s=10.0)  # a reconnect after 10 s of outage
    clock.set_origin("main", 0.0)
    second = feed(clock, "video", [0.0, 0.1, 0.05], 0.1)  # the last one is out of order
    assert second[0] == pytest.approx(first[-1] + 0.1 + 10.0)
    assert second == sorted(second)
    assert clock.stats.sessions == 2 and clock.stats.jumps == 0


def test_backoff_grows_exponentially_with_jitter_within_bounds() -> None:
    backoff = Backoff(0.5, 8.0, random.Random(1))
    waits = [backoff.next() for _ in range(8)]
    ceilings = [0.5, 1, 2, 4, 8, 8, 8, 8]
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True))
    assert len({round(w, 6) for w in waits[4:]}) > 1  # jittered, not a fixed cadence
    backoff.reset()
    assert backoff.next() <= 0.5
