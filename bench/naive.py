"""The naive loop a user would write instead of tandem, run on files as fast as it goes:
one Python process per stream reading every frame with cv2.VideoCapture (`read`, as
bench/baseline.py's live loop), every 6th (5 of 30 fps) resized to 640x360 with
cv2.resize and given to the vision analyzers inline, built by tandem's own registry
with the same options but no motion gate (the loop has none). One torch and one OpenCV
thread per process, as tandem's workers.

Its rate is the analysed frames of all processes over the time from the first frame
analysed to the last (start-up excluded, as for tandem in bench/gating.py)."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Iterator
from typing import Any

EVERY = 6  # 30 fps sources analysed at 5 fps
SIZE = (640, 360)


def ungated(options: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Analyzer options without the motion gate's keys."""
    return {
        name: {k: v for k, v in table.items() if not k.startswith("gate")}
        for name, table in options.items()
    }


def _stream(
    path: str, names: list[str], options: dict[str, Any], barrier: Any, out: Any, decoded: bool
) -> None:
    import cv2
    import torch

    from daemon.workers.analyzers import build
    from daemon.workers.analyzers.base import WorkItem

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    analyzers = build(names, "video", options)
    cap = cv2.VideoCapture(path)
    sampled = list(_sampled(cap)) if decoded else _sampled(cap)
    barrier.wait(timeout=120)
    first = last = 0.0
    analysed = 0
    for i, frame in sampled:
        rgb = torch.from_numpy(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        item = WorkItem("s", "video", i // EVERY, i / 30, rgb, 0, EVERY / 30)
        for analyzer in analyzers:
            analyzer.analyze(item)
        last = time.monotonic()
        first = first or last
        analysed += 1
    cap.release()
    out.put((analysed, first, last))


def _sampled(cap: Any) -> Iterator[tuple[int, Any]]:
    """(frame number, frame resized to SIZE) of every EVERY-th frame, reading them all."""
    import cv2

    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            return
        if i % EVERY == 0:
            yield i, cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA)
        i += 1


def loop_rate(
    path: str, copies: int, names: list[str], options: dict[str, Any], decoded: bool = False
) -> float:
    """Frames analysed per second by `copies` loop processes on the same file; with
    `decoded`, from frames decoded and resized before the clock starts: the analysis
    alone, the most any pipeline that runs these analyzers on every frame can reach."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "cv2", "daemon.workers.analyzers"])
    barrier, out = ctx.Barrier(copies), ctx.Queue()
    args = (path, names, ungated(options), barrier, out, decoded)
    procs = [ctx.Process(target=_stream, args=args, daemon=True) for _ in range(copies)]
    for proc in procs:
        proc.start()
    try:
        got = [out.get(timeout=900) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    frames = sum(g[0] for g in got)
    span = max(g[2] for g in got) - min(g[1] for g in got)
    return (frames - 1) / span if span > 0 else float("nan")
