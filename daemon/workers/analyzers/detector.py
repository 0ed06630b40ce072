"""Object detection with a transformers model: DETR, YOLOS (softmax over classes plus
"no object"), RT-DETR and other focal-loss DETRs (sigmoid per class)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from daemon.workers.analyzers.hf import FramePrep, fixed_size, load_model, preprocessor_config
from daemon.workers.analyzers.model_base import ModelAnalyzer, Outputs
from daemon.workers.analyzers.model_specs import DetectorOptions, slug
from daemon.workers.device import Runtime

SIGMOID_MODELS = {"rt_detr", "rt_detr_v2", "deformable_detr", "conditional_detr", "d_fine"}


class DetectorAnalyzer(ModelAnalyzer):
    """count, labels, scores, boxes ([x0, y0, x1, y1] in 0..1), surest first; and
    count_<label> for each of `count_labels`."""

    name: ClassVar[str] = "objects"

    def __init__(self, options: DetectorOptions, runtime: Runtime) -> None:
        from transformers import AutoModelForObjectDetection

        super().__init__(options, runtime)
        self.options = options
        self.model = load_model(options, AutoModelForObjectDetection, runtime)
        config = preprocessor_config(options)
        self.size = options.size or fixed_size(config)
        self.prep = FramePrep(runtime, config)
        self.sigmoid = self.model.config.model_type in SIGMOID_MODELS
        self.id2label: dict[int, str] = {
            int(k): str(v) for k, v in self.model.config.id2label.items()
        }
        self.counted = {slug(label): label for label in options.count_labels}

    def forward(self, frames: list[torch.Tensor]) -> list[Outputs]:
        pixels = self.prep(frames, self.size)
        with self.runtime.autocast():
            out = self.model(pixel_values=pixels)
        logits = out.logits.float()
        if self.sigmoid:
            scores, labels = logits.sigmoid().max(dim=-1)
        else:  # the last class is "no object"
            scores, labels = logits.softmax(dim=-1)[..., :-1].max(dim=-1)
        boxes = _xyxy(out.pred_boxes.float())
        # One copy back to the host for the whole batch (it also waits for the device).
        scores, labels, boxes = scores.cpu(), labels.cpu(), boxes.cpu()
        return [self._one(scores[i], labels[i], boxes[i]) for i in range(len(frames))]

    def _one(self, scores: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor) -> Outputs:
        keep = scores >= self.options.threshold
        order = scores[keep].argsort(descending=True)
        names = [self.id2label.get(int(i), str(int(i))) for i in labels[keep][order]]
        limit = self.options.max_detections
        out: dict[str, Any] = {
            "count": len(names),
            "labels": names[:limit],
            "scores": [round(float(s), 4) for s in scores[keep][order][:limit]],
            "boxes": [[round(float(v), 4) for v in b] for b in boxes[keep][order][:limit]],
        }
        for key, label in self.counted.items():
            out[f"count_{key}"] = sum(1 for n in names if n == label)
        return out


def _xyxy(cxcywh: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = cxcywh.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1).clamp(0, 1)
