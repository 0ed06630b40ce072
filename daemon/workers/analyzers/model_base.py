"""What the model-backed analyzers share: batched analysis with the optional motion
gate (whole frames, or for detectors the changed region), single items as batches of
one, and warm-up."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

import torch

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.gate import Box, Decision, gate_for
from daemon.workers.analyzers.model_specs import ModelOptions
from daemon.workers.analyzers.state import PerStream
from daemon.workers.device import Runtime

Outputs = dict[str, JsonValue]
WARMUP_FRAME = (360, 640)  # the default analysis size


class ModelAnalyzer(ABC):
    name: ClassVar[str]
    gates_itself: ClassVar[bool] = True  # the registry wraps no gate around it
    modality: ClassVar[Modality] = "video"

    def __init__(self, options: ModelOptions, runtime: Runtime) -> None:
        self.runtime = runtime
        self.gate = gate_for(options)
        self._last: PerStream[Outputs] = PerStream()

    @abstractmethod
    def forward(self, frames: list[torch.Tensor]) -> list[Outputs]:
        """Outputs for frames of one size: one forward of the model."""

    def forward_region(self, frame: torch.Tensor, region: Box, last: Outputs) -> Outputs:
        """Outputs for `frame` from a forward on `region` only, with `last` (the
        stream's last result) standing for the rest; for analyzers whose options allow
        gate = "motion_regions"."""
        raise NotImplementedError(f"{self.name} cannot look at a region only")

    def analyze(self, item: WorkItem) -> Outputs:
        return self.analyze_batch([item])[0]

    def analyze_batch(self, items: list[WorkItem]) -> list[Outputs]:
        plan = self._gated(items)
        whole = [i for i, d in enumerate(plan) if d.run and d.region is None]
        with torch.inference_mode():  # also when called outside a worker
            ran = iter(self.forward([items[i].tensor for i in whole]) if whole else [])
            out = [self._one(item, d, ran) for item, d in zip(items, plan, strict=True)]
        return out

    def warmup(self, batch_size: int) -> None:
        frame = torch.full((*WARMUP_FRAME, 3), 128, dtype=torch.uint8)
        with torch.inference_mode():
            for n in sorted({1, batch_size}):
                self.forward([frame] * n)

    def _one(self, item: WorkItem, decision: Decision, ran: Iterator[Outputs]) -> Outputs:
        """The item's result, in stream order: a region forward needs the result before."""
        last = self._last.get(item.stream)
        if not decision.run:  # no motion: the scene is as the model last saw it
            return {**(last or {}), "gated": True}
        if decision.region is None:
            result = {**next(ran), "gated": False}
        else:
            result = {
                **self.forward_region(item.tensor, decision.region, last or {}),
                "gated": False,
            }
        self._last.put(item.stream, result)
        return result

    def _gated(self, items: list[WorkItem]) -> list[Decision]:
        """Per item: whether it reaches the model, and where the model looks."""
        if self.gate is None:
            return [Decision(True)] * len(items)
        plan: list[Decision] = []
        answered: set[str] = set()
        for item in items:
            has_result = item.stream in answered or self._last.get(item.stream) is not None
            decision = self.gate.decide(item, has_result)
            plan.append(decision)
            if decision.run:
                answered.add(item.stream)
        return plan
