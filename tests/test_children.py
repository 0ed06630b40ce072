"""Local children: restarted with exponential backoff, left down past the restart budget.

Real child processes that exit at once; the supervisor's clock is the test's, so the
backoff is checked without sleeping through it.
"""

from __future__ import annotations

import sys

from daemon.core.children import (
    BACKOFF_MAX_S,
    BACKOFF_START_S,
    RESTART_BUDGET,
    RESTART_WINDOW_S,
    Child,
    Children,
)


def crasher(children: Children, code: int = 3) -> Child:
    child = children.add("worker-vision-0", ["unused"], restart=True)
    child.argv = [sys.executable, "-c", f"raise SystemExit({code})"]
    return child


def run_once(children: Children, child: Child, start: float, exit_at: float) -> float:
    """Start the child at `start`, reap its exit at `exit_at`; the delay before its restart."""
    assert children.tick(start) == [] and child.proc is not None, "started when due"
    child.proc.wait(timeout=30)
    assert children.tick(exit_at) == [child]
    assert child.exit_code == 3
    assert child.next_start is not None
    return child.next_start - exit_at


def test_a_crash_loop_backs_off_doubling_and_is_left_down_past_the_budget() -> None:
    restarted: list[str] = []
    children = Children(on_restart=restarted.append)
    child = crasher(children)
    now, delays = 0.0, []
    for _ in range(RESTART_BUDGET):
        delays.append(run_once(children, child, now, now))
        assert children.tick(now + delays[-1] - 0.01) == [] and child.proc is None, "too early"
        now += delays[-1]
    assert delays == [BACKOFF_START_S * 2**i for i in range(RESTART_BUDGET)]
    assert sum(delays) < RESTART_WINDOW_S  # so every restart above counts against the budget
    assert restarted == ["worker-vision-0"] * RESTART_BUDGET

    assert children.tick(now) == [] and child.proc is not None
    child.proc.wait(timeout=30)
    assert children.tick(now) == [child]
    assert child.given_up and child.next_start is None
    children.tick(now + 3600)
    assert child.proc is None, "left down"
    assert len(restarted) == RESTART_BUDGET


def test_backoff_is_capped_and_starts_over_after_a_run_of_a_whole_window() -> None:
    children = Children()
    child = crasher(children)
    now, delays = 0.0, []
    for _ in range(7):  # each run 50 s: under the window, yet older restarts age out of it
        delays.append(run_once(children, child, now, now + 50))
        now += 50 + delays[-1]
    assert delays == [1, 2, 4, 8, 16, BACKOFF_MAX_S, BACKOFF_MAX_S]
    assert not child.given_up

    # Up a whole window before it exits: a new incident, not the same crash loop.
    assert run_once(children, child, now, now + RESTART_WINDOW_S) == BACKOFF_START_S


def test_a_child_that_exits_cleanly_or_is_not_to_restart_stays_down() -> None:
    children = Children()
    done = children.add("ingest-clip", ["unused"], restart=False)
    done.argv = [sys.executable, "-c", "raise SystemExit(3)"]
    clean = children.add("worker-audio-0", ["unused"], restart=True)
    clean.argv = [sys.executable, "-c", "pass"]
    children.tick(0.0)
    for child in (done, clean):
        assert child.proc is not None
        child.proc.wait(timeout=30)
    assert sorted(c.name for c in children.tick(1.0)) == ["ingest-clip", "worker-audio-0"]
    children.tick(3600.0)
    assert done.proc is None and clean.proc is None
    assert done.next_start is None and clean.next_start is None
    assert not done.given_up and not clean.given_up
