"""Pixel helpers shared by the frame analyzers: RGB back to the YUV planes FFmpeg's
detectors look at, and FFmpeg's sum of absolute differences over those planes.

Frames reach workers as RGB converted from the decoder's limited-range YUV, so turning
them back with the same BT.601 matrix recovers the planes blackdetect, freezedetect and
scdet see (within rounding), which keeps our thresholds equal to FFmpeg's. OpenCV does
the arithmetic: no torch here (a worker without models does not load it).
"""

from __future__ import annotations

import cv2
import numpy as np

# BT.601 limited range, RGB (0..255) -> Y'CbCr (Y 16..235, C 16..240), offset last.
_RGB_TO_YUV = np.array(
    [
        [0.256788, 0.504129, 0.097906, 16.0],
        [-0.148223, -0.290993, 0.439216, 128.0],
        [0.439216, -0.367788, -0.071427, 128.0],
    ],
    dtype=np.float32,
)
_RGB_TO_Y = np.ascontiguousarray(_RGB_TO_YUV[:1])
_RGB_TO_UV = np.ascontiguousarray(_RGB_TO_YUV[1:])

Planes = tuple[np.ndarray, np.ndarray]  # Y (H x W), chroma (H/2 x W/2 x 2), uint8


def luma(frame: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 RGB -> H x W uint8 limited-range Y (rounded, as in 8-bit video)."""
    return cv2.transform(frame, _RGB_TO_Y)


def yuv420(frame: np.ndarray) -> Planes:
    """H x W x 3 uint8 RGB -> (Y, UV) uint8 planes, chroma of each 2 x 2 block's average
    as 4:2:0. The block is averaged in RGB (rounded to 8 bits) and then converted, which
    the matrix being linear makes the same chroma within one level (a scaler that
    averages before rounding), at a third of the cost of converting every pixel's chroma
    first (~0.75 ms against ~2.2 ms at 640x360)."""
    h, w = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
    even = frame[:h, :w]
    half = cv2.resize(even, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return luma(even), cv2.transform(half, _RGB_TO_UV)  # uint8 in, rounded uint8 out


def mean_abs_diff(a: Planes, b: Planes) -> float:
    """FFmpeg's SAD over all planes divided by the number of samples (levels, 0..255)."""
    sad = sum(cv2.norm(pa, pb, cv2.NORM_L1) for pa, pb in zip(a, b, strict=True))
    count = sum(p.size for p in a)
    return float(sad) / count


def changed_mask(diff: np.ndarray, threshold: int) -> np.ndarray:
    """H x W uint8 mask of an RGB absolute difference: 1 where a pixel's largest channel
    change exceeds `threshold`, else 0."""
    r, g, b = cv2.split(diff)
    largest = cv2.max(cv2.max(r, g), b)
    return cv2.threshold(largest, threshold, 1, cv2.THRESH_BINARY)[1]
