"""Media for the ingest tests, made with PyAV: transport streams with restarts, resolution
changes and corruption; 5.1 audio; all real encodes of known content."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.support.media import encode_clip, moving_square


def concat_ts(path: Path, parts: list[Path]) -> Path:
    """Transport streams glued byte for byte: each part restarts its timestamps."""
    path.write_bytes(b"".join(p.read_bytes() for p in parts))
    return path


def ts_clip(path: Path, seconds: float, width: int = 320, height: int = 240) -> Path:
    return encode_clip(path, seconds=seconds, width=width, height=height, container="mpegts")


def corrupt(path: Path, out: Path, spans: int = 6, span_bytes: int = 2000, seed: int = 7) -> Path:
    """A copy of `path` with `spans` runs of random bytes written over its middle 80%."""
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    for i in range(spans):
        start = len(data) // 10 + (i * len(data) * 8 // 10) // spans
        data[start : start + span_bytes] = rng.randbytes(span_bytes)
    out.write_bytes(bytes(data))
    return out


def surround_tone(path: Path, seconds: float, rate: int = 44100, hz: float = 440.0) -> Path:
    """AAC 5.1 at `rate`: the tone on the front left and right channels only."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=rate, layout="5.1")
        block = 1024
        total = round(seconds * rate)
        for start in range(0, total, block):
            n = min(block, total - start)
            t = np.arange(start, start + n) / rate
            tone = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
            planes = np.zeros((6, n), dtype=np.float32)
            planes[0] = planes[1] = tone
            frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout="5.1")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def bframe_clip(path: Path, seconds: float, fps: int = 30) -> Path:
    """H.264 with non-reference B-frames (two between references, no B-pyramid)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"preset": "veryfast", "x264-params": "bframes=2:b-pyramid=none"}
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(moving_square(i, 320, 240), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path
