"""Faces with the pretrained Haar cascades that ship inside OpenCV 4.x (`cv2.data`)."""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.specs import FacesOptions


def normalized_boxes(rects: np.ndarray, width: int, height: int, limit: int) -> list[JsonValue]:
    """OpenCV's (x, y, w, h) pixel rectangles as [x0, y0, x1, y1] in 0..1 of the frame."""
    return [
        [
            round(x / width, 4),
            round(y / height, 4),
            round((x + w) / width, 4),
            round((y + h) / height, 4),
        ]
        for x, y, w, h in (map(int, r) for r in rects[:limit])
    ]


class FacesAnalyzer:
    """count: faces found; boxes: the largest `max_boxes` of them."""

    name: ClassVar[str] = "faces"
    modality: ClassVar[Modality] = "video"

    def __init__(self, options: FacesOptions | None = None) -> None:
        self.options = options or FacesOptions()
        path = cv2.data.haarcascades + self.options.cascade  # type: ignore[attr-defined]
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ValueError(f"cannot load OpenCV's cascade {path}")

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        rgb = item.array
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        size = self.options.min_size
        found = self._cascade.detectMultiScale(
            gray,
            scaleFactor=self.options.scale_factor,
            minNeighbors=self.options.min_neighbors,
            minSize=(size, size),
        )
        rects = np.asarray(found, dtype=np.int64).reshape(-1, 4)
        rects = rects[np.argsort(-(rects[:, 2] * rects[:, 3]))]
        height, width = gray.shape
        return {
            "count": len(rects),
            "boxes": normalized_boxes(rects, width, height, self.options.max_boxes),
        }
