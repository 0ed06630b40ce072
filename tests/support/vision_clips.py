"""Clips with known truth for the vision analyzers, encoded to H.264 with PyAV, and the
same clips read back as the worker would see them (RGB frames with media time)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from daemon.workers.analyzers import WorkItem
from tests.support.media import moving_square

W, H, FPS = 320, 240, 25
# The truth clip, in seconds: what each segment shows.
TRUTH = [
    (0.0, 3.0, "moving"),
    (3.0, 6.0, "black"),
    (6.0, 9.0, "moving"),
    (9.0, 12.4, "frozen"),
    (12.4, 13.6, "moving"),
    (13.6, 15.0, "cut"),  # a different scene, also moving
]


def truth_frame(i: int) -> np.ndarray:
    t = i / FPS
    kind = next(k for start, end, k in TRUTH if start <= t < end)
    if kind == "black":
        return np.zeros((H, W, 3), np.uint8)
    if kind == "frozen":
        return moving_square(round(9.0 * FPS), W, H)
    image = moving_square(i, W, H)
    if kind == "cut":
        image = 255 - image  # light background, dark square: a hard scene change
    return image


def encode(path: Path, frames: int, make: Callable[[int], np.ndarray], fps: int = FPS) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        first = make(0)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(fps), "crf": "18"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(make(i), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def truth_clip(path: Path) -> Path:
    return encode(path, round(TRUTH[-1][1] * FPS), truth_frame)


def items(path: Path, stream: str = "s", every: int = 1) -> Iterator[WorkItem]:
    """Every `every`-th decoded frame as RGB, with its media time and sampling interval."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        duration = every / float(video.average_rate or FPS)
        for n, frame in enumerate(container.decode(video)):
            if n % every == 0:
                rgb = torch.from_numpy(frame.to_ndarray(format="rgb24"))
                yield WorkItem(stream, "video", n // every, float(frame.time), rgb, 0, duration)


def texture(seed: int = 7) -> np.ndarray:
    """A sharp checkerboard with detail, to blur."""
    yy, xx = np.mgrid[0:H, 0:W]
    board = (((yy // 8) + (xx // 8)) % 2 * 160 + 48).astype(np.uint8)
    noise = np.random.default_rng(seed).integers(0, 40, (H, W), dtype=np.uint8)
    return np.repeat((board + noise)[..., None], 3, axis=2)


def face(image: np.ndarray, cx: int, cy: int, s: int) -> None:
    """A drawn frontal face (skin, brows, eyes, nose, mouth): OpenCV's cascade finds it."""
    cv2.ellipse(image, (cx, cy), (int(s * 0.42), int(s * 0.55)), 0, 0, 360, (200, 170, 150), -1)
    for side in (-1, 1):
        ex, ey = cx + side * int(s * 0.18), cy - int(s * 0.1)
        cv2.ellipse(image, (ex, ey - int(s * 0.1)), (int(s * 0.12), int(s * 0.03)), 0, 0, 360,
                    (60, 40, 30), -1)  # fmt: skip
        cv2.ellipse(image, (ex, ey), (int(s * 0.09), int(s * 0.045)), 0, 0, 360, (40, 30, 30), -1)
    cv2.ellipse(image, (cx, cy + int(s * 0.1)), (int(s * 0.05), int(s * 0.1)), 0, 0, 360,
                (170, 140, 120), -1)  # fmt: skip
    cv2.ellipse(image, (cx, cy + int(s * 0.3)), (int(s * 0.15), int(s * 0.04)), 0, 0, 360,
                (120, 60, 60), -1)  # fmt: skip


def person(image: np.ndarray, cx: int, top: int, height: int) -> None:
    """A dark upright human silhouette: OpenCV's HOG people detector finds it."""
    u, c = height / 8, (30, 30, 30)
    cv2.circle(image, (cx, int(top + u * 0.5)), int(u * 0.5), c, -1)
    cv2.rectangle(
        image, (int(cx - u * 0.75), int(top + u)), (int(cx + u * 0.75), int(top + u * 4)), c, -1
    )
    for side in (-1, 1):
        arm = (
            (int(cx + side * u * 0.7), int(top + u * 1.2)),
            (int(cx + side * u * 1.1), int(top + u * 3.8)),
        )
        leg = (
            (int(cx + side * u * 0.4), int(top + u * 4)),
            (int(cx + side * u * 0.6), int(top + height)),
        )
        cv2.line(image, *arm, c, int(u * 0.35))
        cv2.line(image, *leg, c, int(u * 0.45))


def faces_and_persons_frame(i: int, fps: int = 10) -> np.ndarray:
    """640 x 360: two faces in the first second, two people in the second, nothing after."""
    second = i // fps
    if second == 0:
        image = np.full((360, 640, 3), 90, np.uint8)
        face(image, 200, 180, 140)
        face(image, 470, 170, 110)
    elif second == 1:
        image = np.full((360, 640, 3), 180, np.uint8)
        person(image, 200, 60, 240)
        person(image, 450, 90, 200)
    else:
        image = np.full((360, 640, 3), 128, np.uint8)
    return cv2.GaussianBlur(image, (5, 5), 0)
