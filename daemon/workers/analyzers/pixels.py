"""Pixel helpers shared by the frame analyzers: RGB back to the YUV planes FFmpeg's
detectors look at, and FFmpeg's sum of absolute differences over those planes.

Frames reach workers as RGB converted from the decoder's limited-range YUV, so turning
them back with the same BT.601 matrix recovers the planes blackdetect, freezedetect and
scdet see (within rounding), which keeps our thresholds equal to FFmpeg's.
"""

from __future__ import annotations

import torch
from torch.nn import functional

# BT.601 limited range, RGB (0..255) -> Y'CbCr (Y 16..235, C 16..240).
_RGB_TO_YUV = torch.tensor(
    [
        [0.256788, 0.504129, 0.097906],
        [-0.148223, -0.290993, 0.439216],
        [0.439216, -0.367788, -0.071427],
    ]
)
_YUV_OFFSET = torch.tensor([16.0, 128.0, 128.0])


def luma(frame: torch.Tensor) -> torch.Tensor:
    """H x W x 3 uint8 RGB -> H x W float32 limited-range Y (rounded, as in 8-bit video)."""
    y = frame.to(torch.float32) @ _RGB_TO_YUV[0].to(frame.device)
    return (y + 16.0).round_()


def yuv420(frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """H x W x 3 uint8 RGB -> (Y, U, V) int16 planes, chroma averaged over 2 x 2 as 4:2:0."""
    h, w = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
    yuv = frame[:h, :w].to(torch.float32) @ _RGB_TO_YUV.T.to(frame.device)
    yuv += _YUV_OFFSET.to(frame.device)
    y = yuv[..., 0].round()
    chroma = functional.avg_pool2d(yuv[..., 1:].permute(2, 0, 1).unsqueeze(0), 2).squeeze(0).round()
    return y.to(torch.int16), chroma[0].to(torch.int16), chroma[1].to(torch.int16)


Planes = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def mean_abs_diff(a: Planes, b: Planes) -> float:
    """FFmpeg's SAD over all planes divided by the number of samples (levels, 0..255)."""
    sad = sum(int((pa - pb).abs().sum().item()) for pa, pb in zip(a, b, strict=True))
    count = sum(p.numel() for p in a)
    return sad / count
