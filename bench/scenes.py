"""Camera-like H.264 clips for the gating section (bench/gating.py), generated once per
process: what a fixed camera sees most of the time, and the worst case for a gate.

- "still": a fixed camera on a textured scene (walls, a doorway, fine grain that H.264
  keeps), with a person (a third of the frame's height) walking across for the middle
  sixth of the clip (10 s of 60), and nothing else moving;
- "moving": the same scene panning two pixels a frame (every pixel changes on every
  frame, as with a camera panning or shaking), with the person walking too;
- "busy": the still camera's scene with a crowd crossing it all the time (ten people at
  their own speeds, both ways, near and far): motion everywhere that no single shift of
  the picture explains, the worst case for a gate.

720p30, ultrafast, a keyframe every second and no B-frames, like most IP cameras and
like bench/live.py's clip; no audio (the naive loop cannot read it)."""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from tests.support.vision_clips import person

WIDTH, HEIGHT, FPS = 1280, 720, 30
KINDS = ("still", "moving", "busy")
PAN_PX = 2  # per frame, "moving"

_tmp = tempfile.TemporaryDirectory(prefix="tandem-bench-scenes-")
_made: dict[tuple[str, float], Path] = {}


def scene(seed: int = 3) -> np.ndarray:
    """A fixed camera's view: walls, a doorway, shelves, fine grain; wider than the frame
    so that "moving" can pan across it."""
    rng = np.random.default_rng(seed)
    width = WIDTH * 2
    image = np.empty((HEIGHT, width, 3), np.uint8)
    ramp = np.linspace(70, 150, width, dtype=np.float32)
    image[:] = ramp[None, :, None].astype(np.uint8)
    image[int(HEIGHT * 0.75) :] = (90, 80, 70)  # the floor
    for _ in range(12):  # doorways, shelves, pictures
        x = int(rng.integers(0, width - 200))
        y = int(rng.integers(0, HEIGHT // 2))
        w, h = int(rng.integers(60, 220)), int(rng.integers(60, 300))
        colour = tuple(int(c) for c in rng.integers(30, 220, 3))
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, -1)
        cv2.rectangle(image, (x, y), (x + w, y + h), (20, 20, 20), 3)
    grain = rng.integers(-12, 13, image.shape, dtype=np.int16)
    return np.clip(image.astype(np.int16) + grain, 0, 255).astype(np.uint8)


def frame(kind: str, i: int, frames: int, background: np.ndarray) -> np.ndarray:
    """Frame i of `frames`: the scene (panned for "moving"), and the passer-by."""
    x = (PAN_PX * i) % WIDTH if kind == "moving" else WIDTH // 4
    image = np.ascontiguousarray(background[:, x : x + WIDTH])
    if kind == "busy":
        crowd(image, i)
        return image
    start, end = frames * 5 // 12, frames * 7 // 12  # the middle sixth
    if kind == "moving" or start <= i < end:
        share = ((i - start) % (end - start)) / (end - start)
        tall = HEIGHT // 3  # a person across the room from the camera
        person(image, int(WIDTH * (0.1 + 0.8 * share)), HEIGHT * 4 // 5 - tall, tall)
    return image


CROWD = 10


def crowd(image: np.ndarray, i: int) -> None:
    """Ten people crossing frame i, each at its own height, size, speed and direction,
    wrapping around: somewhere in every part of the picture someone moves."""
    rng = np.random.default_rng(11)
    for _ in range(CROWD):
        tall = int(rng.integers(HEIGHT // 6, HEIGHT // 2))
        feet = int(rng.integers(HEIGHT // 2, HEIGHT - 10))
        speed = float(rng.uniform(2, 9)) * (1 if rng.random() < 0.5 else -1)
        start = float(rng.uniform(0, WIDTH))
        x = int((start + speed * i) % (WIDTH + 200)) - 100
        person(image, x, feet - tall, tall)


def clip(kind: str, seconds: float) -> Path:
    """The clip of that kind and length (encoded once per process)."""
    key = (kind, seconds)
    if key not in _made:
        path = Path(_tmp.name) / f"{kind}-{seconds:g}s.mp4"
        _made[key] = _encode(path, kind, round(seconds * FPS))
    return _made[key]


def _encode(path: Path, kind: str, frames: int) -> Path:
    background = scene()
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(FPS), "bf": "0", "crf": "23"}
        for i in range(frames):
            video = av.VideoFrame.from_ndarray(frame(kind, i, frames, background), format="rgb24")
            video.pts, video.time_base = i, Fraction(1, FPS)
            out.mux(stream.encode(video))
        out.mux(stream.encode(None))
    return path
