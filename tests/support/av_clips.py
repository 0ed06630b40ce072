"""Clips with known truth in both modalities: H.264 video and AAC audio, muxed together."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.support.media import moving_square


def encode_av(
    path: Path,
    seconds: float,
    frame: Callable[[int, float], np.ndarray],
    audio: Callable[[np.ndarray], np.ndarray],
    fps: int = 25,
    rate: int = 48000,
    keyframe_s: float = 1.0,
    audio_codec: str = "aac",
) -> Path:
    """`frame(i, t)` gives frame i's RGB image; `audio(t)` the mono samples at times t;
    a keyframe every `keyframe_s`. A lossless `audio_codec` (flac) keeps full scale."""
    with av.open(str(path), "w") as out:
        first = frame(0, 0.0)
        vstream = out.add_stream("libx264", rate=fps)
        vstream.height, vstream.width = first.shape[:2]
        vstream.pix_fmt = "yuv420p"
        vstream.options = {"preset": "ultrafast", "g": str(round(fps * keyframe_s)), "crf": "18"}
        astream = out.add_stream(audio_codec, rate=rate, layout="mono")
        for i in range(round(seconds * fps)):
            vf = av.VideoFrame.from_ndarray(frame(i, i / fps), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            out.mux(vstream.encode(vf))
        out.mux(vstream.encode(None))
        block = 1024
        total = round(seconds * rate)
        for start in range(0, total, block):
            t = np.arange(start, min(start + block, total)) / rate
            af = av.AudioFrame.from_ndarray(
                audio(t).astype(np.float32)[None, :], format="fltp", layout="mono"
            )
            af.sample_rate, af.pts, af.time_base = rate, start, Fraction(1, rate)
            out.mux(astream.encode(af))
        out.mux(astream.encode(None))
    return path


def black_and_silence(
    path: Path,
    black: tuple[float, float],
    silence: tuple[float, float],
    seconds: float = 10.0,
    frozen: tuple[float, float] | None = None,
) -> Path:
    """A moving square with a 440 Hz tone; black picture, digital silence and a frozen
    picture (the square stops) where told."""

    def frame(i: int, t: float) -> np.ndarray:
        if black[0] <= t < black[1]:
            return np.zeros((240, 320, 3), np.uint8)
        if frozen is not None and frozen[0] <= t < frozen[1]:
            return moving_square(round(frozen[0] * 25), 320, 240)
        return moving_square(i, 320, 240)

    def audio(t: np.ndarray) -> np.ndarray:
        tone = 0.3 * np.sin(2 * np.pi * 440 * t)
        return np.where((t >= silence[0]) & (t < silence[1]), 0.0, tone)

    return encode_av(path, seconds, frame, audio)


def flashes_and_beeps(path: Path, audio_late_s: float, seconds: float = 12.0) -> Path:
    """Grey picture with a white flash (two frames) every 1.5 s from 1 s; a 100 ms
    1 kHz beep on digital silence `audio_late_s` after each flash."""
    flashes = np.arange(1.0, seconds - 1.0, 1.5)

    def frame(i: int, t: float) -> np.ndarray:
        lit = np.any((t >= flashes - 1e-6) & (t < flashes + 0.08 - 1e-6))
        return np.full((240, 320, 3), 255 if lit else 64, np.uint8)

    def audio(t: np.ndarray) -> np.ndarray:
        since = t[:, None] - (flashes[None, :] + audio_late_s)
        on = np.any((since >= 0) & (since < 0.1), axis=1)
        return np.where(on, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)

    return encode_av(path, seconds, frame, audio)


def face_then_empty_with_speech(path: Path) -> tuple[Path, list[tuple[float, float]]]:
    """640 x 360: a drawn face for the first 4 s, an empty wall after; espeak-ng speech
    at about 1 s and 5 s. Returns the clip and the true speech spans (s)."""
    from tests.support.audio_media import speech_with_gaps
    from tests.support.vision_clips import face

    samples, rate, spans = speech_with_gaps(
        ["the quick brown fox jumps over the lazy dog", "hello there, how are you today"],
        [1.0, 3.0, 1.5],
    )
    seconds = len(samples) / rate

    def frame(i: int, t: float) -> np.ndarray:
        image = np.full((360, 640, 3), 90, np.uint8)
        if t < 4.0:
            face(image, 320, 180, 150)
        return image

    def audio(t: np.ndarray) -> np.ndarray:
        return samples[np.clip(np.round(t * rate).astype(int), 0, len(samples) - 1)]

    return encode_av(path, seconds, frame, audio, fps=25, rate=rate), spans
