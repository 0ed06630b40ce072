"""What the model-backed analyzers share: batched analysis with the optional motion
gate, single items as batches of one, and warm-up."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from daemon.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.gate import MotionGate
from daemon.workers.analyzers.model_specs import ModelOptions
from daemon.workers.analyzers.state import PerStream
from daemon.workers.device import Runtime

Outputs = dict[str, JsonValue]
WARMUP_FRAME = (360, 640)  # the default analysis size


class ModelAnalyzer(ABC):
    name: ClassVar[str]
    modality: ClassVar[Modality] = "video"

    def __init__(self, options: ModelOptions, runtime: Runtime) -> None:
        self.runtime = runtime
        self.gate = (
            MotionGate(options.gate_min_score, options.gate_pixel_threshold, options.gate_refresh_s)
            if options.gate == "motion"
            else None
        )
        self._last: PerStream[Outputs] = PerStream()

    @abstractmethod
    def forward(self, frames: list[torch.Tensor]) -> list[Outputs]:
        """Outputs for frames of one size: one forward of the model."""

    def analyze(self, item: WorkItem) -> Outputs:
        return self.analyze_batch([item])[0]

    def analyze_batch(self, items: list[WorkItem]) -> list[Outputs]:
        chosen = self._gated(items)
        with torch.inference_mode():  # also when called outside a worker
            ran = iter(self.forward([items[i].tensor for i in sorted(chosen)]) if chosen else [])
        out: list[Outputs] = []
        for i, item in enumerate(items):
            if i in chosen:
                result = {**next(ran), "gated": False}
                self._last.put(item.stream, result)
            else:  # no motion: the scene is as the model last saw it
                result = {**(self._last.get(item.stream) or {}), "gated": True}
            out.append(result)
        return out

    def warmup(self, batch_size: int) -> None:
        frame = torch.full((*WARMUP_FRAME, 3), 128, dtype=torch.uint8)
        with torch.inference_mode():
            for n in sorted({1, batch_size}):
                self.forward([frame] * n)

    def _gated(self, items: list[WorkItem]) -> set[int]:
        """Indices of the items that reach the model."""
        if self.gate is None:
            return set(range(len(items)))
        chosen: set[int] = set()
        answered: set[str] = set()
        for i, item in enumerate(items):
            has_result = item.stream in answered or self._last.get(item.stream) is not None
            if self.gate.wants(item, has_result):
                chosen.add(i)
                answered.add(item.stream)
        return chosen
