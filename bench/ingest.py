"""Decode-stage throughput: our ingest (streams/: decode, sample, scale to the analysis
size in FFmpeg's scaler) against bare PyAV decoding of the same H.264 files, in the same
run, with N streams decoded in parallel by N processes (one per stream, as tandemd runs).

Rows per resolution and stream count: source frames per second summed over the streams
(the clip's frames over the time to get through it). "default" is the shipped stream
config: analysis at 5 fps, frames the analysis rate skips are not converted and, where
the codec allows, not decoded (non-reference frames), decoder threads as tandemd's
"auto" gives them (cores over streams, slice threads); "fps 5, all decoded" turns that
skipping off; "every frame" converts all 30 frames a second, the worst case.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from bench.core import Row, row

LABELS = {"default": "default", "fps5": "fps 5, all decoded", "every": "every frame"}
RESOLUTIONS = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}


def _clip(path: Path, size: tuple[int, int], seconds: float) -> Path:
    import av
    import numpy as np

    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "g": "60"}
        rng = np.random.default_rng(1)
        base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
        image = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))
        for i in range(round(seconds * 30)):
            frame = av.VideoFrame.from_ndarray(np.roll(image, 4 * i, axis=1), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _decode(mode: str, path: str, streams: int, barrier: Any, results: Any) -> None:
    import av

    from daemon.runtime.allocator import keep_frame_buffers
    from streams import SourceSpec, SourceStats, auto_decode_threads, open_source

    if mode != "bare":
        keep_frame_buffers()  # as the ingest process does (daemon/ingest/process.py)
    barrier.wait()
    start = time.perf_counter()
    if mode == "bare":
        with av.open(path) as container:
            frames = sum(1 for _ in container.decode(video=0))
    else:
        stats = SourceStats()
        fps = 30.0 if mode == "every" else 5.0
        # decode_threads "auto" as tandemd resolves it for this many streams on this host
        threads = auto_decode_threads(streams, len(os.sched_getaffinity(0)))
        spec = SourceSpec(
            "bench",
            path,
            audio=False,
            fps=fps,
            skip_nonref=mode == "default",
            decode_threads=threads,
            slice_threads=True,
        )
        for _ in open_source(spec, stats):
            pass
        frames = 0  # the clip's frames, known to the caller: skipped ones count as covered
    results.put((frames, start, time.perf_counter()))


def _throughput(mode: str, path: Path, streams: int, clip_frames: int) -> float:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(streams), ctx.Queue()
    procs = [
        ctx.Process(target=_decode, args=(mode, str(path), streams, barrier, results))
        for _ in range(streams)
    ]
    for proc in procs:
        proc.start()
    done = [results.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join()
    frames = sum(d[0] for d in done) if mode == "bare" else clip_frames * streams
    return frames / (max(d[2] for d in done) - min(d[1] for d in done))


def run(quick: bool) -> list[Row]:
    counts = (1, 2) if quick else (1, 2, 4, 8)
    modes = ("default",) if quick else ("default", "fps5", "every")
    # Long enough to time (a 1 s 1080p clip decodes in a tenth of a second); best of 2.
    seconds, repeats = (3.0, 2) if quick else (6.0, 2)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp:
        for name, size in RESOLUTIONS.items():
            clip = _clip(Path(tmp) / f"{name}.mp4", size, seconds)
            frames = round(seconds * 30)
            for n in counts:
                for mode in modes:
                    # Alternate reference and ours, keep the best of each: least disturbed.
                    bare = ours = 0.0
                    for _ in range(repeats):
                        bare = max(bare, _throughput("bare", clip, n, frames))
                        ours = max(ours, _throughput(mode, clip, n, frames))
                    label = LABELS[mode]
                    rows.append(
                        row(
                            f"ingest decode {name}30 x{n} ({label}, scaled to 640x360)",
                            ours,
                            "frames/s",
                            f"bare PyAV decode x{n}",
                            bare,
                        )
                    )
    return rows
