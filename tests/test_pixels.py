"""daemon.workers.analyzers.pixels: the YUV planes black, frozen and scene look at, from
the RGB frames workers receive. They must be the planes FFmpeg's detectors see in the
decoder's output (within rounding), and the fast chroma path (2 x 2 averaged in RGB,
then converted) within one level of converting every pixel first."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from daemon.workers.analyzers.pixels import _RGB_TO_YUV, yuv420

WIDTH, HEIGHT = 320, 180


def smooth_picture(i: int) -> np.ndarray:
    """Colour gradients with a mild texture: what a camera's picture looks like to 4:2:0."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    rng = np.random.default_rng(i)
    image = np.stack(
        [40 + 170 * x / WIDTH, 30 + 180 * y / HEIGHT, 200 - 150 * (x + y) / (WIDTH + HEIGHT)],
        axis=-1,
    )
    image += rng.normal(0, 3, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def decoded(tmp_path: Path) -> list[av.VideoFrame]:
    """Real H.264 frames in yuv420p (limited range, BT.601: FFmpeg's defaults)."""
    path = tmp_path / "smooth.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "12"}
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(smooth_picture(i), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def every_pixel_first(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exact reference: each pixel's Y'CbCr in float64, chroma averaged over 2 x 2
    and then rounded (what pixels.yuv420 did before, at three times the cost)."""
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    even = rgb[:h, :w].astype(np.float64)
    matrix = _RGB_TO_YUV.astype(np.float64)
    yuv = even @ matrix[:, :3].T + matrix[:, 3]
    chroma = yuv[..., 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3))
    return np.rint(yuv[..., 0]), np.rint(chroma)


@pytest.mark.parametrize("shape", [(180, 320), (181, 323)])
def test_fast_planes_are_within_one_level_of_the_exact_ones(shape: tuple[int, int]) -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (*shape, 3), dtype=np.uint8)
    luma, chroma = yuv420(rgb)
    want_luma, want_chroma = every_pixel_first(rgb)
    assert luma.shape == want_luma.shape and chroma.shape == want_chroma.shape
    assert luma.dtype == np.uint8 and chroma.dtype == np.uint8
    assert np.abs(luma - want_luma).max() <= 1
    assert np.abs(chroma - want_chroma).max() <= 1
    # Off by one only where the RGB average's rounding tips it: a small share.
    assert np.mean(chroma != want_chroma) < 0.35


def test_planes_of_a_decoded_frame_come_back_from_its_rgb(tmp_path: Path) -> None:
    """Decoder planes -> swscale RGB (as ingest sends) -> pixels.yuv420: the planes
    freezedetect and blackdetect read, within the RGB round trip's rounding (swscale's
    fast YUV -> RGB path leaves luma about one level off; its SIMD varies by CPU)."""
    for frame in decoded(tmp_path):
        planes = frame.to_ndarray()  # yuv420p: Y rows, then U and V at quarter size
        y = planes[:HEIGHT]
        u = planes[HEIGHT : HEIGHT + HEIGHT // 4].reshape(HEIGHT // 2, WIDTH // 2)
        v = planes[HEIGHT + HEIGHT // 4 :].reshape(HEIGHT // 2, WIDTH // 2)
        rgb = frame.reformat(format="rgb24", threads=1).to_ndarray()
        luma, chroma = yuv420(rgb)
        luma_error = np.abs(luma.astype(np.int16) - y)
        assert luma_error.mean() < 2 and luma_error.max() <= 4
        for ours, theirs in ((chroma[..., 0], u), (chroma[..., 1], v)):
            chroma_error = np.abs(ours.astype(np.int16) - theirs)
            assert chroma_error.mean() < 1 and chroma_error.max() <= 3
