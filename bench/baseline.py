"""What a user would write instead of tandem: one Python process per stream, each with
cv2.VideoCapture reading the same live-paced H.264 clip as bench/e2e.py, keeping every
6th frame (5 of 30 fps, the default config's rate), resizing it to 640x360 with
cv2.resize, and running the default vision analyzers inline: config.toml's
[workers.vision] analyzers with their options (motion, black, frozen, faces, persons),
built by tandem's own registry, the same code tandem's vision worker runs, but without
the motion gate that config.toml puts faces and persons behind (a naive loop has none).

It does less than tandem: no audio (cv2.VideoCapture cannot read it), no fusion, no
publishing, no metrics. torch is limited to one thread per process (a naive script would
leave the default and oversubscribe the cores; one thread is kinder to the baseline).
The "camera" is simulated by releasing frame i no earlier than t0 + i/30: a process that
falls behind reads from a growing backlog, as it would from a real camera's socket.

"Held" in the measured interval: every sampled frame analysed before the run's deadline
and p99 capture-to-result under 1 s. Latency here is per frame (capture to the analyzer's
result), while tandem's is per fused 1 s window (its newest item to publish): the
baseline's measure is the more favourable one.

Rows (this section): streams the baseline holds against tandem (the same searches the
e2e section uses, run once per `python -m bench`); the e2e section has the latency at
half of tandem's load against the baseline at the same load.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any

from bench.core import Row, row
from bench.live import (
    ANALYSIS_FPS,
    LATENCY_BUDGET_S,
    RESOLUTIONS,
    SOURCE_FPS,
    Trial,
    clip,
    percentile,
    plan,
)


def _stream(path: str, warmup_s: float, measure_s: float, barrier: Any, out: Any) -> None:
    import cv2
    import torch

    from bench.live import default_workers
    from bench.naive import ungated
    from daemon.workers.analyzers import build
    from daemon.workers.analyzers.base import WorkItem

    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # as tandem's workers: one stream per process, one core each
    cap = cv2.VideoCapture(path)
    vision = default_workers()["vision"]
    # The same analyzers and options, but no motion gate: the loop has none.
    analyzers = build(vision["analyzers"], "video", ungated(vision.get("options", {})))
    every = round(SOURCE_FPS / ANALYSIS_FPS)
    barrier.wait(timeout=120)
    t0 = time.monotonic()
    measure_from, end = t0 + warmup_s, t0 + warmup_s + measure_s
    hard_stop = end + 3.0  # frames captured before `end` but not analysed by now: missed
    latencies: list[float] = []
    missed = analysed = 0
    i = 0
    while (capture := t0 + i / SOURCE_FPS) < end and time.monotonic() < hard_stop:
        if (wait := capture - time.monotonic()) > 0:
            time.sleep(wait)
        ok, frame = cap.read()
        if not ok:
            cap.release()
            cap = cv2.VideoCapture(path)
            continue
        if i % every == 0:
            if frame.shape[:2] != (360, 640):
                frame = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            item = WorkItem(
                "s", "video", i // every, i / SOURCE_FPS, torch.from_numpy(rgb), 0, every / 30
            )
            for analyzer in analyzers:
                analyzer.analyze(item)
            if capture >= measure_from:
                latencies.append(time.monotonic() - capture)
                analysed += 1
        i += 1
    # Sampled frames captured in the measured interval that were never analysed.
    while (capture := t0 + i / SOURCE_FPS) < end:
        if i % every == 0 and capture >= measure_from:
            missed += 1
        i += 1
    out.put((analysed, missed + analysed, latencies))


def baseline_trial(
    resolution: str, n: int, warmup_s: float, measure_s: float, clip_s: float
) -> Trial:
    path = str(clip(resolution, clip_s))
    # A fork server that imported torch, cv2 and the analyzer once, and never ran torch
    # ops: each stream process starts in milliseconds instead of importing torch again.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "cv2", "daemon.workers.analyzers", "bench.live"])
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [
        ctx.Process(target=_stream, args=(path, warmup_s, measure_s, barrier, out), daemon=True)
        for _ in range(n)
    ]
    for proc in procs:
        proc.start()
    try:
        got = [out.get(timeout=150 + warmup_s + measure_s) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    analysed = sum(g[0] for g in got)
    expected = sum(g[1] for g in got)
    latencies = [x for g in got for x in g[2]]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    held = analysed == expected and p99 < LATENCY_BUDGET_S
    return Trial(n, held, p50, p99, f"analysed {analysed}/{expected}, p99 {p99:.3f} s")


START = 1  # the default vision set costs ~70 ms a frame: a few streams per core


def held(resolution: str, quick: bool) -> tuple[int, int]:
    """Searched together with tandem's (bench/e2e.py), trial by trial."""
    from bench import e2e

    return e2e.searched(resolution, quick)["baseline"]


def at_load(resolution: str, n: int, quick: bool) -> Trial:
    p = plan(quick)
    return baseline_trial(resolution, n, p.warmup_s, p.half_measure_s, p.clip_s)


def run(quick: bool) -> list[Row]:
    from bench import e2e

    rows: list[Row] = []
    # --quick: 360p only (each trial starts real processes).
    for resolution in ["360p"] if quick else RESOLUTIONS:
        ref, ref_hi = held(resolution, quick)
        ours, ours_hi = e2e.held(resolution, quick)
        rows.append(
            row(
                f"baseline cv2 process per stream {resolution}30 streams held "
                f"({e2e.bracket(ref, ref_hi)})",
                ref,
                "streams",
                f"tandem, default analyzers ({e2e.bracket(ours, ours_hi)})",
                ours,
            )
        )
    return rows
