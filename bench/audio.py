"""Audio analyzers: real-time factor per worker process (one torch thread) for each
built-in, the default chain's streams per core, and silero-vad batched vs frame by frame.

Reference for the per-analyzer rows: decoding and resampling the same audio to 16 kHz
mono with PyAV in the same run (the fixed ingest cost of one stream).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.core import Row, best_of, row
from daemon.workers.analyzers import WorkItem, build
from daemon.workers.analyzers.silero import FRAME, load_jit
from daemon.workers.analyzers.specs import DEFAULT_AUDIO
from streams import AudioChunk, SourceSpec, open_source


def _material(seconds: float, path: Path) -> Path:
    """Tones, noise and gaps at 48 kHz in a WAV file."""
    import av

    rate = 48000
    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.2 * t) > 0)
    x = (x + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_f32le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(x[None], format="flt", layout="mono")
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _decode(path: Path) -> tuple[list[WorkItem], float]:
    spec = SourceSpec("bench", str(path), video=False, audio_rate=16000, audio_chunk_s=0.5)
    start = time.perf_counter()
    chunks = [c for c in open_source(spec) if isinstance(c, AudioChunk)]
    elapsed = time.perf_counter() - start
    items = [
        WorkItem("bench", "audio", c.seq, c.pts, torch.from_numpy(c.samples), 16000) for c in chunks
    ]
    return items, elapsed


def _rtf(names: list[str], items: list[WorkItem], seconds: float) -> float:
    analyzers = build(names, "audio")
    start = time.perf_counter()
    with torch.inference_mode():
        for item in items:
            for analyzer in analyzers:
                analyzer.analyze(item)
    return seconds / (time.perf_counter() - start)


def _silero_frame_by_frame(items: list[WorkItem], seconds: float) -> float:
    jit = load_jit()
    jit.reset_states()
    x = torch.cat([i.tensor for i in items])
    frames = x[: x.numel() // FRAME * FRAME].split(FRAME)
    start = time.perf_counter()
    with torch.inference_mode():
        for frame in frames:
            jit(frame, 16000)
    return seconds / (time.perf_counter() - start)


def run(quick: bool) -> list[Row]:
    torch.set_num_threads(1)
    seconds = 20.0 if quick else 120.0
    runs = 2 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        path = _material(seconds, Path(tmp) / "bench.wav")
        items, _ = _decode(path)
        decode = best_of(runs, lambda: seconds / _decode(path)[1])
    reference = "PyAV decode + resample to 16 kHz (x real time)"
    rows = [
        row(
            f"audio {name}: x real time, 1 thread",
            best_of(runs, lambda n=name: _rtf([n], items, seconds)),
            "x",
            reference,
            decode,
        )
        for name in DEFAULT_AUDIO
    ]
    chain = best_of(runs, lambda: _rtf(list(DEFAULT_AUDIO), items, seconds))
    rows.append(
        row(
            "audio default chain: 16 kHz streams per core",
            chain,
            "streams",
            "streams per core decoded + resampled",
            decode,
        )
    )
    silero = best_of(runs, lambda: _silero_frame_by_frame(items, seconds))
    vad = best_of(runs, lambda: _rtf(["vad"], items, seconds))
    rows.append(
        row(
            "audio vad batched: x real time",
            vad,
            "x",
            "silero model(frame) one by one (x real time)",
            silero,
        )
    )
    return rows
