"""Image classification with a transformers model (ViT, ConvNeXt, ResNet, ...)."""

from __future__ import annotations

from typing import ClassVar

import torch

from daemon.workers.analyzers.hf import (
    FramePrep,
    center_crops,
    fixed_size,
    load_model,
    preprocessor_config,
)
from daemon.workers.analyzers.model_base import ModelAnalyzer, Outputs
from daemon.workers.analyzers.model_specs import ClassifierOptions
from daemon.workers.device import Runtime


def square_input(model_config: object, processor: dict[str, object]) -> tuple[int, int]:
    """The model's input size: the processor's crop or size, else the config's image_size."""
    size = fixed_size(processor, "crop_size") or fixed_size(processor)
    if size is not None:
        return size
    side = getattr(model_config, "image_size", 224)
    return (side, side) if isinstance(side, int) else (int(side[0]), int(side[1]))


class ClassifierAnalyzer(ModelAnalyzer):
    """label and score of the top class; top_labels, top_scores: the best `top_k`."""

    name: ClassVar[str] = "classes"

    def __init__(self, options: ClassifierOptions, runtime: Runtime) -> None:
        from transformers import AutoModelForImageClassification

        super().__init__(options, runtime)
        self.options = options
        self.model = load_model(options, AutoModelForImageClassification, runtime)
        config = preprocessor_config(options)
        self.size = square_input(self.model.config, config)
        self.prep = FramePrep(runtime, config)
        self.crop = center_crops(config)
        self.multi_label = self.model.config.problem_type == "multi_label_classification"
        self.id2label = {int(k): str(v) for k, v in self.model.config.id2label.items()}

    def forward(self, frames: list[torch.Tensor]) -> list[Outputs]:
        pixels = self.prep(frames, self.size, crop=self.crop)
        with self.runtime.autocast():
            logits = self.model(pixel_values=pixels).logits.float()
        probs = logits.sigmoid() if self.multi_label else logits.softmax(dim=-1)
        k = min(self.options.top_k, probs.shape[-1])
        top = probs.topk(k, dim=-1)
        values, indices = top.values.cpu(), top.indices.cpu()
        out: list[Outputs] = []
        for scores, ids in zip(values.tolist(), indices.tolist(), strict=True):
            labels = [self.id2label.get(i, str(i)) for i in ids]
            out.append(
                {
                    "label": labels[0],
                    "score": round(scores[0], 4),
                    "top_labels": labels,
                    "top_scores": [round(s, 4) for s in scores],
                }
            )
        return out
