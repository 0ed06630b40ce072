"""Upright people with OpenCV 4.x's pretrained HOG + linear SVM people detector."""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.faces import normalized_boxes
from daemon.workers.analyzers.specs import PersonsOptions


class PersonsAnalyzer:
    """count: people found (SVM score >= min_weight); boxes and scores: surest first."""

    name: ClassVar[str] = "persons"
    modality: ClassVar[Modality] = "video"
    # The smallest crop the motion gate shows it: HOG's 64 x 128 window, and some room.
    min_region: ClassVar[tuple[int, int]] = (96, 160)

    def __init__(self, options: PersonsOptions | None = None) -> None:
        self.options = options or PersonsOptions()
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        rgb = item.array
        stride = self.options.win_stride
        found, weights = self._hog.detectMultiScale(
            rgb, winStride=(stride, stride), scale=self.options.scale
        )
        rects = np.asarray(found, dtype=np.int64).reshape(-1, 4)
        scores = np.asarray(weights, dtype=np.float64).reshape(-1)
        keep = scores >= self.options.min_weight
        rects, scores = rects[keep], scores[keep]
        order = np.argsort(-scores)
        rects, scores = rects[order], scores[order]
        height, width = rgb.shape[:2]
        limit = self.options.max_boxes
        return {
            "count": len(rects),
            "boxes": normalized_boxes(rects, width, height, limit),
            "scores": [round(float(s), 4) for s in scores[:limit]],
        }
