"""Blur: the variance of the Laplacian of the frame's luma (the usual focus measure; the
same number as OpenCV's `cv2.Laplacian(gray, cv2.CV_64F).var()` away from the border).
Sharp detail gives a high variance; a blurred or featureless frame a low one."""

from __future__ import annotations

from typing import ClassVar

import cv2

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.pixels import luma
from daemon.workers.analyzers.specs import BlurOptions


class BlurAnalyzer:
    name: ClassVar[str] = "blur"
    modality: ClassVar[Modality] = "video"

    def __init__(self, options: BlurOptions | None = None) -> None:
        self.options = options or BlurOptions()

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        # The 3 x 3 kernel [[0, 1, 0], [1, -4, 1], [0, 1, 0]], exact in 16 bits on 8-bit
        # luma; only where it fits inside the frame (no padding), as before.
        response = cv2.Laplacian(luma(item.array), cv2.CV_16S, ksize=1)[1:-1, 1:-1]
        _, std = cv2.meanStdDev(response)
        sharpness = float(std[0, 0]) ** 2
        return {"sharpness": round(sharpness, 3), "blurry": sharpness < self.options.threshold}
