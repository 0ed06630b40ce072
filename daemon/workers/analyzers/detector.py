"""Object detection with a transformers model: DETR and YOLOS (softmax over the classes
plus a last "no object" class), RT-DETR and the other focal-loss DETRs (a sigmoid per
class, no "no object" class). Which one a model is shows in its class logits: one more
than its labels means a "no object" class.

With gate = "motion_regions" the model may see only the changed region of a frame: its
boxes are mapped back to the whole frame, and the stream's last detections that lie
wholly outside the region stand for the rest of the scene, which did not change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, cast

import torch

from daemon.geometry import overlaps
from daemon.workers.analyzers.gate import Box
from daemon.workers.analyzers.hf import FramePrep, fixed_size, load_model, preprocessor_config
from daemon.workers.analyzers.model_base import ModelAnalyzer, Outputs
from daemon.workers.analyzers.model_specs import DetectorOptions, slug
from daemon.workers.device import Runtime

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 in 0..1 of the whole frame


@dataclass(frozen=True, slots=True)
class Detection:
    label: str
    score: float
    box: Rect


class DetectorAnalyzer(ModelAnalyzer):
    """count, labels, scores, boxes ([x0, y0, x1, y1] in 0..1), surest first; and
    count_<label> for each of `count_labels`; region: the part of the frame the model
    saw ([x0, y0, x1, y1] in 0..1), null for the whole frame."""

    name: ClassVar[str] = "objects"

    def __init__(self, options: DetectorOptions, runtime: Runtime) -> None:
        from transformers import AutoModelForObjectDetection

        super().__init__(options, runtime)
        self.options = options
        self.model = load_model(options, AutoModelForObjectDetection, runtime)
        config = preprocessor_config(options)
        self.size = options.size or fixed_size(config)
        self.prep = FramePrep(runtime, config)
        self.num_labels = int(self.model.config.num_labels)
        # RT-DETR can be trained without focal loss: then a softmax over its classes.
        self.focal = bool(getattr(self.model.config, "use_focal_loss", True))
        self.id2label: dict[int, str] = {
            int(k): str(v) for k, v in self.model.config.id2label.items()
        }
        self.counted = {slug(label): label for label in options.count_labels}

    def forward(self, frames: list[torch.Tensor]) -> list[Outputs]:
        return [self._outputs(found, None) for found in self._detect(frames)]

    def forward_region(self, frame: torch.Tensor, region: Box, last: Outputs) -> Outputs:
        height, width = frame.shape[:2]
        x0, y0, x1, y1 = region
        (found,) = self._detect([frame[y0:y1, x0:x1]])
        seen: Rect = (x0 / width, y0 / height, x1 / width, y1 / height)
        inside = [Detection(d.label, d.score, _into(d.box, seen)) for d in found]
        outside = [d for d in _listed(last) if not overlaps(d.box, seen)]
        merged = sorted(inside + outside, key=lambda d: d.score, reverse=True)
        return self._outputs(merged, seen)

    def _detect(self, frames: list[torch.Tensor]) -> list[list[Detection]]:
        """Detections over the threshold per frame, surest first, boxes in 0..1."""
        pixels = self.prep(frames, self.size)
        with self.runtime.autocast():
            out = self.model(pixel_values=pixels)
        scores, labels = self._scores(out.logits.float())
        boxes = _xyxy(out.pred_boxes.float())
        # One copy back to the host for the whole batch (it also waits for the device).
        scores, labels, boxes = scores.cpu(), labels.cpu(), boxes.cpu()
        return [self._kept(scores[i], labels[i], boxes[i]) for i in range(len(frames))]

    def _scores(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each query's best class and its probability."""
        if logits.shape[-1] == self.num_labels + 1:  # the last class is "no object"
            best = logits.softmax(dim=-1)[..., :-1].max(dim=-1)
        elif self.focal:
            best = logits.sigmoid().max(dim=-1)
        else:
            best = logits.softmax(dim=-1).max(dim=-1)
        return best.values, best.indices

    def _kept(
        self, scores: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor
    ) -> list[Detection]:
        keep = scores >= self.options.threshold
        order = scores[keep].argsort(descending=True)
        kept = zip(
            scores[keep][order].tolist(),
            labels[keep][order].tolist(),
            boxes[keep][order].tolist(),
            strict=True,
        )
        return [Detection(self.id2label.get(i, str(i)), s, _rect(b)) for s, i, b in kept]

    def _outputs(self, found: list[Detection], seen: Rect | None) -> Outputs:
        listed = found[: self.options.max_detections]
        out: dict[str, Any] = {
            "count": len(found),
            "labels": [d.label for d in listed],
            "scores": [round(d.score, 4) for d in listed],
            "boxes": [[round(v, 4) for v in d.box] for d in listed],
            "region": None if seen is None else [round(v, 4) for v in seen],
        }
        for key, label in self.counted.items():
            out[f"count_{key}"] = sum(1 for d in found if d.label == label)
        return out


def _xyxy(cxcywh: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = cxcywh.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1).clamp(0, 1)


def _rect(values: list[float]) -> Rect:
    x0, y0, x1, y1 = values
    return x0, y0, x1, y1


def _into(box: Rect, region: Rect) -> Rect:
    """A box in 0..1 of a region, in 0..1 of the whole frame."""
    w, h = region[2] - region[0], region[3] - region[1]
    return (
        region[0] + box[0] * w,
        region[1] + box[1] * h,
        region[0] + box[2] * w,
        region[1] + box[3] * h,
    )


def _listed(last: Outputs) -> list[Detection]:
    """The detections a result of this analyzer lists."""
    labels = cast(list[str], last.get("labels", []))
    scores = cast(list[float], last.get("scores", []))
    boxes = cast(list[list[float]], last.get("boxes", []))
    return [Detection(*d) for d in zip(labels, scores, map(_rect, boxes), strict=True)]
