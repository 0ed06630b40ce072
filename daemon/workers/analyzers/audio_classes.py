"""Audio classification with a transformers model (AST trained on AudioSet, or any
audio-classification model) over a sliding window of each stream's audio."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import torch

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.pretrained import load
from daemon.workers.analyzers.specs import ClassifyOptions
from daemon.workers.analyzers.window import SlidingWindows, Window


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


class ClassifyAnalyzer:
    """Once per hop_s of new audio, over the last window_s: labels and scores (top_k,
    best first), top_label, top_score, score_<label> per watched label, window_start and
    window_end (media s). Between runs every value is None and labels/scores are []."""

    name: ClassVar[str] = "classify"
    modality: ClassVar[Modality] = "audio"

    def __init__(self, options: ClassifyOptions) -> None:
        import transformers

        self.options = options
        self._extractor = load(
            transformers.AutoFeatureExtractor, options.model, options.allow_download
        )
        self._model = load(
            transformers.AutoModelForAudioClassification, options.model, options.allow_download
        ).eval()
        id2label: dict[int, str] = self._model.config.id2label
        self._labels = [id2label[i] for i in range(len(id2label))]
        by_name = {label.lower(): i for i, label in enumerate(self._labels)}
        missing = [w for w in options.watch if w.lower() not in by_name]
        if missing:
            raise ValueError(f"watch: {missing} are not labels of {options.model!r}")
        self._watch = {f"score_{slug(w)}": by_name[w.lower()] for w in options.watch}
        # AudioSet is multi-label: AST is trained with a sigmoid per label.
        self._multi = self._model.config.problem_type != "single_label_classification"
        rate = int(self._extractor.sampling_rate)
        self._windows = SlidingWindows(rate, options.window_s, options.hop_s)

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        window = self._windows.push(item)
        if window is None:
            return self._empty()
        scores = self._scores(window)
        k = min(self.options.top_k, scores.numel())
        top = torch.topk(scores, k)
        out: dict[str, JsonValue] = {
            "labels": [self._labels[i] for i in top.indices.tolist()],
            "scores": [round(v, 4) for v in top.values.tolist()],
            "top_label": self._labels[int(top.indices[0])],
            "top_score": round(float(top.values[0]), 4),
        }
        for key, index in self._watch.items():
            out[key] = round(float(scores[index]), 4)
        out["window_start"] = round(window.start, 3)
        out["window_end"] = round(window.end, 3)
        return out

    @torch.inference_mode()
    def _scores(self, window: Window) -> torch.Tensor:
        features: Any = self._extractor(
            window.samples.numpy(), sampling_rate=self._windows.rate, return_tensors="pt"
        )
        logits: torch.Tensor = self._model(**features).logits[0]
        return logits.sigmoid() if self._multi else logits.softmax(-1)

    def _empty(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {"labels": [], "scores": [], "top_label": None}
        out["top_score"] = None
        out.update(dict.fromkeys(self._watch))
        out["window_start"] = out["window_end"] = None
        return out
