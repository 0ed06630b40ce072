"""Audio test material with known truth, real reference tools, and chunks made the way
a stream delivers them (streams.open_source: PyAV decode, FFmpeg resample, chunking)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers import Analyzer, WorkItem
from streams import AudioChunk, SourceSpec, open_source


@dataclass(frozen=True)
class Part:
    """`seconds` of a sine at `hz` and peak `amplitude` (0 amplitude: digital silence;
    hz 0: white noise of that peak); `clip_at` hard-clips the part to +-clip_at."""

    seconds: float
    hz: float = 1000.0
    amplitude: float = 0.0
    clip_at: float | None = None


def synthesize(parts: list[Part], rate: int = 48000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    start = 0
    for part in parts:
        n = round(part.seconds * rate)
        t = np.arange(start, start + n) / rate
        if part.hz > 0:
            x = part.amplitude * np.sin(2 * np.pi * part.hz * t)
        else:
            x = part.amplitude * rng.uniform(-1, 1, n)
        if part.clip_at is not None:
            x = np.clip(x, -part.clip_at, part.clip_at)
        out.append(x)
        start += n
    return np.concatenate(out).astype(np.float32)


def write_wav(path: Path, mono: np.ndarray, rate: int = 48000, codec: str = "pcm_f32le") -> Path:
    """A mono WAV file (float samples by default, so nothing is lost to quantization)."""
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        block = 4096
        for start in range(0, len(mono), block):
            frame = av.AudioFrame.from_ndarray(
                mono[None, start : start + block], format="flt", layout="mono"
            )
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def chunks(path: Path, rate: int = 16000, chunk_ms: int = 500, stream: str = "s") -> list[WorkItem]:
    """The file's audio as a worker receives it."""
    spec = SourceSpec(
        stream, str(path), video=False, audio_rate=rate, audio_chunk_s=chunk_ms / 1000
    )
    return [
        WorkItem(stream, "audio", c.seq, c.pts, torch.from_numpy(c.samples), c.sample_rate)
        for c in open_source(spec)
        if isinstance(c, AudioChunk)
    ]


def feed(analyzer: Analyzer, items: list[WorkItem]) -> list[dict[str, JsonValue]]:
    return [analyzer.analyze(item) for item in items]


def need(binary: str) -> str:
    found = shutil.which(binary)
    if found is None:
        pytest.skip(f"{binary} is not installed (scripts/system-deps installs it)")
    return found


def ffmpeg_log(path: Path, audio_filter: str) -> str:
    """FFmpeg's own log of running `audio_filter` over the file."""
    proc = subprocess.run(
        [
            need("ffmpeg"),
            "-hide_banner",
            "-nostats",
            "-i",
            str(path),
            "-af",
            audio_filter,
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stderr


def ebur128(path: Path) -> tuple[float, list[tuple[float, float, float]]]:
    """FFmpeg ebur128: integrated LUFS, and (t, momentary, short-term) every 100 ms."""
    log = ffmpeg_log(path, "ebur128")
    frames = [
        (float(t), float(m), float(s))
        for t, m, s in re.findall(r"t:\s*([\d.]+)\s+TARGET:\S+ LUFS\s+M:\s*(\S+)\s+S:\s*(\S+)", log)
    ]
    integrated = re.search(r"Integrated loudness:\s+I:\s+(\S+) LUFS", log)
    assert integrated is not None, log[-2000:]
    return float(integrated.group(1)), frames


def silencedetect(
    path: Path, noise_db: float, duration_s: float
) -> list[tuple[float, float | None]]:
    """FFmpeg silencedetect: (start, end) of each silence; end None if the file ends in it."""
    log = ffmpeg_log(path, f"silencedetect=noise={noise_db}dB:d={duration_s}")
    spans: list[tuple[float, float | None]] = []
    for kind, value in re.findall(r"silence_(start|end): (-?[\d.]+)", log):
        if kind == "start":
            spans.append((float(value), None))
        else:
            spans[-1] = (spans[-1][0], float(value))
    return spans


def espeak(text: str, voice: str = "en") -> tuple[np.ndarray, int]:
    """Real synthesized speech, trimmed to its first and last sample above -40 dBFS."""
    proc = subprocess.run(
        [need("espeak-ng"), "-v", voice, "-s", "150", "--stdout", text],
        capture_output=True,
        timeout=60,
        check=True,
    )
    with av.open(__import__("io").BytesIO(proc.stdout), format="wav") as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])
    x = pcm.astype(np.float32) / 32768 if pcm.dtype == np.int16 else pcm.astype(np.float32)
    loud = np.flatnonzero(np.abs(x) > 0.01)
    return x[loud[0] : loud[-1] + 1], rate


def speech_with_gaps(
    phrases: list[str], gaps_s: list[float]
) -> tuple[np.ndarray, int, list[tuple[float, float]]]:
    """gaps_s[0] of silence, phrase 0, gaps_s[1], phrase 1, ..., gaps_s[-1]; returns the
    samples, their rate and the true (start, end) of each phrase in seconds."""
    assert len(gaps_s) == len(phrases) + 1
    parts: list[np.ndarray] = []
    spans = []
    rate = 0
    t = 0.0
    for i, gap in enumerate(gaps_s):
        rate = rate or espeak("a")[1]
        parts.append(np.zeros(round(gap * rate), np.float32))
        t += gap
        if i < len(phrases):
            speech, rate = espeak(phrases[i])
            parts.append(speech)
            spans.append((t, t + len(speech) / rate))
            t += len(speech) / rate
    return np.concatenate(parts), rate, spans
