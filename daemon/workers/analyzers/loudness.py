"""Loudness per ITU-R BS.1770-4 / EBU R128: momentary (400 ms), short-term (3 s) and
integrated (gated, since the stream's state began), kept per stream across chunks."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.bs1770 import (
    GatedIntegrator,
    apply_k_weighting,
    k_weighting,
    lufs,
)
from daemon.workers.analyzers.following import Followed
from daemon.workers.analyzers.specs import LoudnessOptions

STEP_S = 0.1  # BS.1770 blocks of 400 ms overlap by 75%: one step is 100 ms
MOMENTARY_STEPS = 4
SHORT_TERM_STEPS = 30
WARMUP_S = 0.1  # the K-filter's transient decays by > 200 dB within this


@dataclass(slots=True)
class _Stream:
    rate: int
    coefficients: tuple[torch.Tensor, ...]
    history: torch.Tensor  # the last WARMUP_S of raw samples, to warm the filter up
    pending: torch.Tensor  # K-weighted samples not yet in a full 100 ms step
    steps: deque[float] = field(default_factory=lambda: deque(maxlen=SHORT_TERM_STEPS))
    integrator: GatedIntegrator = field(default_factory=GatedIntegrator)


def _new_stream(item: WorkItem) -> _Stream:
    empty = torch.zeros(0, dtype=torch.float64)
    return _Stream(item.rate, k_weighting(item.rate), torch.zeros(0), empty)


class LoudnessAnalyzer:
    """momentary_lufs and short_term_lufs at the chunk's end, momentary_max_lufs within
    the chunk, integrated_lufs since the stream's state began (None until known)."""

    name: ClassVar[str] = "loudness"
    modality: ClassVar[Modality] = "audio"

    def __init__(self, options: LoudnessOptions | None = None) -> None:
        self.options = options or LoudnessOptions()
        self._streams: Followed[_Stream] = Followed(_new_stream)

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        s = self._streams.state_for(item)
        samples = item.tensor.float()
        warm = torch.cat([s.history, samples])
        weighted = apply_k_weighting(warm, s.coefficients)[s.history.numel() :]
        s.history = warm[-round(WARMUP_S * s.rate) :].clone()
        momentary_max = None
        for power in self._step_powers(s, weighted):
            s.steps.append(power)
            if len(s.steps) >= MOMENTARY_STEPS:
                block = sum(list(s.steps)[-MOMENTARY_STEPS:]) / MOMENTARY_STEPS
                s.integrator.add(block)
                momentary_max = max(momentary_max or -float("inf"), lufs(block))
        return {
            "momentary_lufs": self._window(s, MOMENTARY_STEPS),
            "momentary_max_lufs": self._floor(momentary_max),
            "short_term_lufs": self._window(s, SHORT_TERM_STEPS),
            "integrated_lufs": self._floor(s.integrator.integrated()),
        }

    @staticmethod
    def _step_powers(s: _Stream, weighted: torch.Tensor) -> list[float]:
        """Mean squares of the 100 ms steps completed by this chunk."""
        step = round(STEP_S * s.rate)
        joined = torch.cat([s.pending, weighted])
        full = joined.numel() // step * step
        s.pending = joined[full:].clone()
        return joined[:full].square().reshape(-1, step).mean(dim=1).tolist()

    def _window(self, s: _Stream, steps: int) -> float | None:
        if len(s.steps) < steps:
            return None
        return self._floor(lufs(sum(list(s.steps)[-steps:]) / steps))

    def _floor(self, loudness: float | None) -> float | None:
        if loudness is None:
            return None
        return round(max(loudness, self.options.floor_lufs), 3)
