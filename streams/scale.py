"""Decoded frames to RGB at the analysis size, in FFmpeg's scaler (swscale)."""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

# The decoders' usual 4:2:0 formats: scaled in their own format first, then the small
# picture converted to RGB. swscale's one pass that scales and converts at once costs
# 2-2.5x as much (to 640x360: 720p ~1.2 ms against ~0.5 ms a frame, 1080p ~1.8 ms
# against ~0.8 ms), as it converts at the output size from chroma at the source's. The
# result's chroma is 4:2:0 at the output size, as a camera's own stream of that size
# would be; colorspace and range go through unchanged (the small frame keeps the
# source's).
SCALED_IN_PLACE = frozenset({"yuv420p", "yuvj420p"})


class RgbScaler:
    """One per stream: swscale contexts are cached per reformatter and rebuilt only when
    the input's size or format changes."""

    def __init__(self) -> None:
        self._scale = VideoReformatter()
        self._convert = VideoReformatter()
        self._direct = VideoReformatter()

    def rgb(self, frame: av.VideoFrame, width: int, height: int) -> npt.NDArray[np.uint8]:
        """The frame as (height, width, 3) uint8 RGB, area-averaged when downscaled."""
        if _in_two_steps(frame, width, height):
            small = self._scale.reformat(
                frame, width=width, height=height, interpolation="AREA", threads=1
            )
            rgb = self._convert.reformat(small, format="rgb24", threads=1)
        else:
            # Area averaging: downscaled without aliasing, and faster than swscale's
            # default bilinear.
            rgb = self._direct.reformat(
                frame, width=width, height=height, format="rgb24", interpolation="AREA", threads=1
            )
        return rgb.to_ndarray()  # type: ignore[return-value]  # rgb24 is uint8


def _in_two_steps(frame: av.VideoFrame, width: int, height: int) -> bool:
    resized = (width, height) != (frame.width, frame.height)
    return resized and frame.format.name in SCALED_IN_PLACE and width % 2 == 0 and height % 2 == 0
