"""Real encoded test media, made with PyAV: known content, so tests know the truth."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def encode_clip(
    path: Path,
    seconds: float = 4.0,
    width: int = 320,
    height: int = 240,
    fps: int = 30,
    tone_hz: float = 440.0,
    amplitude: float = 0.5,
    audio_rate: int = 48000,
    audio: bool = True,
    video: bool = True,
    container: str | None = None,
) -> Path:
    """H.264 video of a white square moving across grey, and AAC audio of a sine tone."""
    with av.open(str(path), "w", format=container) as out:
        vstream = astream = None
        if video:
            vstream = out.add_stream("libx264", rate=fps)
            vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
            vstream.options = {"preset": "ultrafast", "g": str(fps)}
        if audio:
            astream = out.add_stream("aac", rate=audio_rate, layout="stereo")
        if vstream is not None:
            for i in range(round(seconds * fps)):
                frame = av.VideoFrame.from_ndarray(moving_square(i, width, height), format="rgb24")
                frame.pts = i
                frame.time_base = Fraction(1, fps)
                out.mux(vstream.encode(frame))
            out.mux(vstream.encode(None))
        if astream is not None:
            _encode_tone(out, astream, seconds, tone_hz, amplitude, audio_rate)
    return path


def moving_square(i: int, width: int, height: int) -> np.ndarray:
    image = np.full((height, width, 3), 96, dtype=np.uint8)
    side = height // 4
    x = (i * 4) % (width - side)
    image[height // 2 - side // 2 : height // 2 + side // 2, x : x + side] = 255
    return image


def _encode_tone(
    out: av.container.OutputContainer,
    stream: av.AudioStream,
    seconds: float,
    hz: float,
    amplitude: float,
    rate: int,
) -> None:
    block = 1024
    total = round(seconds * rate)
    for start in range(0, total, block):
        n = min(block, total - start)
        t = (np.arange(start, start + n) / rate).astype(np.float64)
        mono = (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([mono, mono]), format="fltp", layout="stereo")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
