"""Zero-shot labels with CLIP or SigLIP: the labels come from config, are encoded once
at start, and each frame is scored against all of them in one matrix product."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from daemon.workers.analyzers.hf import (
    FramePrep,
    ModelLoadError,
    center_crops,
    load_model,
    preprocessor_config,
)
from daemon.workers.analyzers.image_classes import square_input
from daemon.workers.analyzers.model_base import ModelAnalyzer, Outputs
from daemon.workers.analyzers.model_specs import ZeroShotOptions, slug
from daemon.workers.device import Runtime


def _features(out: Any) -> torch.Tensor:
    """get_*_features return a tensor, or (transformers 5) an output with pooler_output."""
    features: torch.Tensor = out if isinstance(out, torch.Tensor) else out.pooler_output
    return features


class ZeroShotAnalyzer(ModelAnalyzer):
    """label, score: the best label and its probability; p_<label>: every label's
    probability (softmax over the labels for CLIP, independent sigmoids for SigLIP)."""

    name: ClassVar[str] = "zeroshot"

    def __init__(self, options: ZeroShotOptions, runtime: Runtime) -> None:
        from transformers import AutoModel

        super().__init__(options, runtime)
        self.options = options
        self.model = load_model(options, AutoModel, runtime)
        self.siglip = self.model.config.model_type.startswith("siglip")
        config = preprocessor_config(options)
        self.size = square_input(self.model.config.vision_config, config)
        self.prep = FramePrep(runtime, config)
        self.crop = center_crops(config)
        self.keys = [f"p_{slug(label)}" for label in options.labels]
        self.text = self._encode_labels()

    def _encode_labels(self) -> torch.Tensor:
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(
                self.options.model,
                revision=self.options.revision,
                local_files_only=not self.options.allow_download,
            )
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"model {self.options.model!r}: no tokenizer: {exc}") from None
        except ImportError as exc:  # SigLIP's own tokenizer needs sentencepiece
            first = str(exc).strip().splitlines()[0]
            raise ModelLoadError(f"model {self.options.model!r}: tokenizer: {first}") from None
        prompts = [self.options.template.format(label) for label in self.options.labels]
        # Prompts are cut to the text model's positions. SigLIP pools its text at the last
        # position and was trained on prompts padded to the full length: pad to that.
        tokens = tokenizer(
            prompts,
            padding="max_length" if self.siglip else True,
            max_length=int(self.model.config.text_config.max_position_embeddings),
            truncation=True,
            return_tensors="pt",
        ).to(self.runtime.device)
        with torch.inference_mode():
            text: torch.Tensor = _features(self.model.get_text_features(**tokens)).float()
        normalized: torch.Tensor = text / text.norm(dim=-1, keepdim=True)
        return normalized

    def forward(self, frames: list[torch.Tensor]) -> list[Outputs]:
        pixels = self.prep(frames, self.size, crop=self.crop)
        with self.runtime.autocast():
            image = _features(self.model.get_image_features(pixel_values=pixels)).float()
        image = image / image.norm(dim=-1, keepdim=True)
        logits = image @ self.text.T * self.model.logit_scale.exp().float()
        if self.siglip:
            probs = (logits + self.model.logit_bias.float()).sigmoid()
        else:
            probs = logits.softmax(dim=-1)
        out: list[Outputs] = []
        for row in probs.cpu().tolist():
            best = max(range(len(row)), key=row.__getitem__)
            result: Outputs = {"label": self.options.labels[best], "score": round(row[best], 4)}
            result.update({key: round(p, 4) for key, p in zip(self.keys, row, strict=True)})
            out.append(result)
        return out
