"""End to end: the most real-time 360p30 and 720p30 streams one tandemd holds on this
machine with the default analyzers (config.toml's [workers]: motion, black, frozen,
faces, persons; level, loudness, silence, clipping, vad, mel, onset; with their options,
so faces and persons behind the motion gate as shipped: on this clip, a square moving
on grey, they search the region around the square), and p50/p99 capture-to-publish
latency at half that load. The quick run stops the search at its budget (a side that
never failed reads "at least N"); the full run searches until both sides have failed.

Each trial is a real tandemd subprocess on a generated config with N live streams (the
same H.264 + AAC clip served at its own rate, see bench/live.py), measured after a
warm-up. "Held" means, over the measured interval:
- every frame at the configured fps analysed: tandem_frames_sampled_total grew by at
  least 90% of N x fps x seconds (the sources kept real time), and every fused record
  has video results == video items (nothing sampled went unanalysed);
- no backpressure drops and no lost items: tandem_frames_dropped_total and
  tandem_items_lost_total did not grow;
- p99 of the fused records' latency_s (capture of the window's newest item to publish)
  under 1 s.
The reference is bench/baseline.py (one cv2.VideoCapture process per stream with the
same vision analyzers inline), searched in the same run with its trials interleaved with
tandem's, one by one, so both sides see the same background load (the machine is shared).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import baseline
from bench.core import Row, row
from bench.live import (
    ANALYSIS_FPS,
    LATENCY_BUDGET_S,
    RESOLUTIONS,
    Plan,
    Search,
    Setup,
    Tandemd,
    Trial,
    clip,
    interleaved,
    percentile,
    plan,
    total,
)


def tandem_trial(
    resolution: str, n: int, warmup_s: float, measure_s: float, setup_plan: Plan
) -> Trial:
    from daemon.publishing.subscriber import Subscriber

    path = clip(resolution, setup_plan.clip_s)
    with tempfile.TemporaryDirectory(prefix="tandem-bench-e2e-") as tmp:
        setup = Setup({f"s{i}": path for i in range(n)}, Path(tmp))
        ids = set(setup.streams)
        with Subscriber(f"tcp://127.0.0.1:{setup.pub_port}", ["fused."]) as sub:
            daemon = Tandemd(setup)
            try:
                return _measure(daemon, sub, ids, warmup_s, measure_s, n)
            finally:
                daemon.stop()


def _measure(
    daemon: Tandemd, sub: Any, ids: set[str], warmup_s: float, measure_s: float, n: int
) -> Trial:
    # Up: every stream has published a fused record (processes started, models loaded).
    seen: set[str] = set()
    deadline = time.monotonic() + 30.0 + 1.5 * n
    while seen != ids:
        if time.monotonic() > deadline or daemon.proc.poll() is not None:
            return Trial(n, False, float("nan"), float("nan"), f"only {len(seen)}/{n} up")
        for _, record in sub.records(timeout_s=0.5):
            seen.add(record["stream"])
            break
    _drain(sub, time.monotonic() + warmup_s)
    before = daemon.scrape()
    started = time.monotonic()
    records = _drain(sub, started + measure_s)
    after = daemon.scrape()
    seconds = time.monotonic() - started
    if before is None or after is None:
        return Trial(n, False, float("nan"), float("nan"), "no /metrics")

    def grew(name: str) -> float:
        return total(after, name) - total(before, name)  # type: ignore[arg-type]

    latencies = [r["latency_s"] for r in records if r.get("latency_s") is not None]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    sampled = grew("tandem_frames_sampled_total")
    expected = n * ANALYSIS_FPS * seconds
    unanalysed = sum(r["video"]["items"] - r["video"]["results"] for r in records)
    dropped = grew("tandem_frames_dropped_total")
    lost = grew("tandem_items_lost_total")
    why = (
        f"sampled {sampled:.0f}/{expected:.0f}, unanalysed {unanalysed}, dropped {dropped:.0f}, "
        f"lost {lost:.0f}, p99 {p99:.3f} s over {len(latencies)} records"
    )
    held = (
        sampled >= 0.9 * expected
        and unanalysed == 0
        and dropped == 0
        and lost == 0
        and len(latencies) >= n * (measure_s - 2)
        and p99 < LATENCY_BUDGET_S
    )
    return Trial(n, held, p50, p99, why)


def _drain(sub: Any, until: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while (left := until - time.monotonic()) > 0:
        for _, record in sub.records(timeout_s=left):
            if record.get("type") == "fused":
                out.append(record)
            break
    return out


_held: dict[tuple[str, bool], dict[str, tuple[int, int]]] = {}


def searched(resolution: str, quick: bool) -> dict[str, tuple[int, int]]:
    """{"tandem"|"baseline": (streams held, fewest seen failing or 0)}: both searches
    interleaved trial by trial, once per process."""
    key = (resolution, quick)
    if key not in _held:
        p = plan(quick)
        print(f"bench: {resolution}30 stream-count search, tandem and baseline", file=sys.stderr)
        ours = Search(
            "tandem",
            lambda n: tandem_trial(resolution, n, p.warmup_s, p.measure_s, p),
            start=baseline.START,
            cap=256,
        )
        ref = Search(
            "baseline",
            lambda n: baseline.baseline_trial(resolution, n, p.warmup_s, p.measure_s, p.clip_s),
            start=baseline.START,
            cap=256,
        )
        interleaved([ours, ref], 2 * p.budget_s)
        _held[key] = {"tandem": (ours.lo, ours.hi), "baseline": (ref.lo, ref.hi)}
    return _held[key]


def held(resolution: str, quick: bool) -> tuple[int, int]:
    return searched(resolution, quick)["tandem"]


def at_load(resolution: str, n: int, quick: bool) -> Trial:
    p = plan(quick)
    return tandem_trial(resolution, n, p.warmup_s, p.half_measure_s, p)


def bracket(lo: int, hi: int) -> str:
    """How far the search got: the capacity bracketed, or at least what held (quick)."""
    return f"fails at {hi}" if hi else f"at least {lo}: none failed within the quick budget"


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    # --quick: 360p only (each trial starts real processes: ~20 s on this machine).
    for resolution in ["360p"] if quick else RESOLUTIONS:
        ours, ours_hi = held(resolution, quick)
        ref, ref_hi = baseline.held(resolution, quick)
        rows.append(
            row(
                f"e2e {resolution}30 streams held, default analyzers ({bracket(ours, ours_hi)})",
                ours,
                "streams",
                f"cv2 process per stream, same vision analyzers inline ({bracket(ref, ref_hi)})",
                ref,
            )
        )
        half = max(1, ours // 2)
        t = at_load(resolution, half, quick)
        b = baseline.at_load(resolution, half, quick)
        for q, ours_s, ref_s in (("p50", t.p50, b.p50), ("p99", t.p99, b.p99)):
            rows.append(
                row(
                    f"e2e {resolution}30 {q} capture-to-publish at {half} streams (half load)",
                    ours_s,
                    "s",
                    f"cv2 process per stream at {half} streams, capture-to-result",
                    ref_s,
                )
            )
    return rows
