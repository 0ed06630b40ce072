"""streams.scale: decoded frames to RGB at the analysis size, on real H.264 720p frames:
the two-step path (scale in the decoder's 4:2:0, then convert) gives the picture the
one-pass swscale conversion gives, colours and range included."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.reformatter import VideoReformatter

from streams.scale import RgbScaler

WIDTH, HEIGHT = 1280, 720
# (x0, y0, x1, y1) in pixels of the 720p picture, and its RGB colour
PATCHES = {
    "red": ((100, 100, 400, 300), (200, 30, 30)),
    "green": ((500, 100, 800, 300), (30, 180, 60)),
    "blue": ((900, 100, 1200, 300), (40, 60, 200)),
    "dark": ((100, 420, 400, 620), (40, 40, 40)),
}


def picture() -> np.ndarray:
    rng = np.random.default_rng(5)
    image = rng.integers(90, 160, (HEIGHT, WIDTH, 3), dtype=np.uint8)  # texture to scale
    for (x0, y0, x1, y1), colour in PATCHES.values():
        image[y0:y1, x0:x1] = colour
    return image


def frames(tmp_path: Path, pix_fmt: str) -> list[av.VideoFrame]:
    """Three decoded frames of a short H.264 720p clip of `picture()` in `pix_fmt`."""
    path = tmp_path / f"{pix_fmt}.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, pix_fmt
        stream.options = {"preset": "ultrafast", "crf": "12"}
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(picture(), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def one_pass(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    rgb = VideoReformatter().reformat(
        frame, width=width, height=height, format="rgb24", interpolation="AREA", threads=1
    )
    return rgb.to_ndarray().astype(np.int16)


def patch_colour(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The mean colour inside a 720p box, its edges left out, in an image of any size."""
    sy, sx = image.shape[0] / HEIGHT, image.shape[1] / WIDTH
    x0, y0, x1, y1 = box
    inner = image[
        int((y0 + 20) * sy) : int((y1 - 20) * sy), int((x0 + 20) * sx) : int((x1 - 20) * sx)
    ]
    return inner.reshape(-1, 3).mean(axis=0)


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuvj420p"])
def test_downscaled_picture_matches_the_one_pass_conversion(tmp_path: Path, pix_fmt: str) -> None:
    decoded = frames(tmp_path, pix_fmt)
    assert decoded[0].format.name == pix_fmt
    scaler = RgbScaler()
    for frame in decoded:
        ours = scaler.rgb(frame, 640, 360)
        assert ours.shape == (360, 640, 3) and ours.dtype == np.uint8
        assert ours.flags.c_contiguous
        diff = np.abs(ours.astype(np.int16) - one_pass(frame, 640, 360))
        # Chroma is 4:2:0 at the output size here, full at it there: edges between
        # colours differ, flat areas and texture hardly.
        assert diff.mean() < 3.0
        assert np.percentile(diff, 99) < 30
        for name, (box, colour) in PATCHES.items():
            got = patch_colour(ours, box)
            # The colour and the range (full for yuvj420p: dark grey stays 40, not 28)
            assert np.abs(got - np.array(colour)).max() < 8, (pix_fmt, name, got)


def test_other_sizes_and_formats_take_the_one_pass_conversion(tmp_path: Path) -> None:
    frame = frames(tmp_path, "yuv420p")[0]
    scaler = RgbScaler()
    same = scaler.rgb(frame, WIDTH, HEIGHT)  # no scaling: a conversion alone
    assert np.array_equal(same.astype(np.int16), one_pass(frame, WIDTH, HEIGHT))
    odd = scaler.rgb(frame, 641, 361)  # 4:2:0 needs even sides
    assert odd.shape == (361, 641, 3)
    assert np.array_equal(odd.astype(np.int16), one_pass(frame, 641, 361))
    rgb_frame = frame.reformat(format="rgb24")
    from_rgb = scaler.rgb(rgb_frame, 640, 360)
    assert np.array_equal(from_rgb.astype(np.int16), one_pass(rgb_frame, 640, 360))
    for name, (box, colour) in PATCHES.items():
        assert np.abs(patch_colour(from_rgb, box) - np.array(colour)).max() < 8, name


def test_a_stream_whose_size_changes_is_scaled_from_its_new_size(tmp_path: Path) -> None:
    big = frames(tmp_path, "yuv420p")[0]
    small = big.reformat(width=960, height=540)
    scaler = RgbScaler()
    for frame in (big, small, big):
        out = scaler.rgb(frame, 640, 360)
        assert out.shape == (360, 640, 3)
        assert np.abs(out.astype(np.int16) - one_pass(frame, 640, 360)).mean() < 3.0
