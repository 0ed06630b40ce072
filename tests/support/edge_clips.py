"""A clip whose event edges are known: a textured picture panning, then still for 4 s
(re-encoded by H.264 with a keyframe every 2 s, one of them inside the still part), then
panning again; a 440 Hz tone, hard-clipped for a stretch whose edges fall inside audio
chunks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tests.support.av_clips import encode_av

W, H, FPS = 640, 360, 25
SECONDS = 12.0
STILL = (3.88, 7.88)  # the picture stands still; keyframes every 2 s: at 4 and 6 s in it
CLIPPED = (8.6, 10.05)  # the tone is clipped; audio chunks are 0.5 s


def picture(seed: int = 3) -> np.ndarray:
    """A colourful, slightly noisy picture: gradients, discs, sensor-like noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    image = np.stack([60 + 120 * yy / H, 90 + 100 * xx / W, 180 - 80 * yy / H], axis=-1)
    for _ in range(30):
        x, y = (int(v) for v in rng.integers(0, [W, H]))
        colour = [float(c) for c in rng.integers(0, 255, 3)]
        cv2.circle(image, (x, y), int(rng.integers(10, H // 5)), colour, -1)
    image = cv2.GaussianBlur(image, (5, 5), 0) + rng.normal(0, 3, (H, W, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def still_then_moving(path: Path) -> Path:
    still = picture()

    def frame(i: int, t: float) -> np.ndarray:
        return still if STILL[0] <= t < STILL[1] else np.roll(still, i * 4, axis=1)

    def audio(t: np.ndarray) -> np.ndarray:
        clipped = (t >= CLIPPED[0]) & (t < CLIPPED[1])
        tone = np.sin(2 * np.pi * 440 * t)
        return np.where(clipped, np.clip(2.0 * tone, -1.0, 1.0), 0.5 * tone)

    return encode_av(path, SECONDS, frame, audio, fps=FPS, keyframe_s=2.0, audio_codec="flac")
