"""A still background with coloured squares on known paths: the truth for tracks, zone
entries and line crossings. Encoded to H.264 with PyAV (FFmpeg's libx264)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.support.vision_clips import encode

W, H, FPS = 640, 360, 25
SIDE = 48
SECONDS = 8.0
LINE_X = 0.5  # a vertical line across the middle: a=(0.5, 0), b=(0.5, 1)


@dataclass(frozen=True)
class Square:
    colour: tuple[int, int, int]
    y: int  # top edge, pixels
    x_from: float  # left edge at `t0`, pixels
    x_to: float  # left edge at `t1`
    t0: float  # shown from t0 to t1
    t1: float

    def x(self, t: float) -> float:
        return self.x_from + (self.x_to - self.x_from) * (t - self.t0) / (self.t1 - self.t0)

    def centre_x_at(self, centre: float) -> float:
        """The media time its centre is at x = `centre` (pixels)."""
        left = centre - SIDE / 2
        return self.t0 + (left - self.x_from) / (self.x_to - self.x_from) * (self.t1 - self.t0)


# Left to right through the line, then right to left through it, on separate rows.
SQUARES = [
    Square((220, 40, 40), 70, 40.0, 540.0, 1.0, 5.0),
    Square((40, 60, 220), 240, 540.0, 40.0, 2.0, 6.0),
]


def _textured(colour: tuple[int, int, int]) -> np.ndarray:
    """The square's picture: its colour in a checker of 8 px, lighter and darker. A real
    object has texture; a flat one moving over itself changes only at its two edges,
    which frame differencing (motion) sees as two regions."""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    shade = np.where((yy // 8 + xx // 8) % 2 == 0, 50, -50)[..., None]
    return np.clip(np.array(colour)[None, None, :] + shade, 0, 255).astype(np.uint8)


def frame(i: int) -> np.ndarray:
    t = i / FPS
    image = np.full((H, W, 3), 96, np.uint8)
    image[:, : W // 2] = 110  # two shades: a background with an edge, still all along
    for square in SQUARES:
        if square.t0 <= t < square.t1:
            x = round(square.x(t))
            image[square.y : square.y + SIDE, x : x + SIDE] = _textured(square.colour)
    return image


def shapes_clip(path: Path) -> Path:
    return encode(path, round(SECONDS * FPS), frame, fps=FPS)
