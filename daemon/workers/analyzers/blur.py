"""Blur: the variance of the Laplacian of the frame's luma (the usual focus measure; the
same number as OpenCV's `cv2.Laplacian(gray, cv2.CV_64F).var()` away from the border).
Sharp detail gives a high variance; a blurred or featureless frame a low one."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch.nn import functional

from daemon.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.pixels import luma
from daemon.workers.analyzers.specs import BlurOptions

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])[None, None]


class BlurAnalyzer:
    name: ClassVar[str] = "blur"
    modality: ClassVar[Modality] = "video"

    def __init__(self, options: BlurOptions | None = None) -> None:
        self.options = options or BlurOptions()

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        y = luma(item.tensor)[None, None]
        response = functional.conv2d(y, _LAPLACIAN.to(y.device))
        sharpness = float(response.var(correction=0).item())
        return {"sharpness": round(sharpness, 3), "blurry": sharpness < self.options.threshold}
