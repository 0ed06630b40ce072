"""Analyzer plugins: a name, a modality, and `analyze(item) -> outputs`.

Outputs are a flat JSON-able dict (numbers, booleans, None, short lists). State that
spans items (the previous frame, a loudness gate) is kept per stream inside the analyzer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

from daemon.protocol import JsonValue

if TYPE_CHECKING:  # the config validates names without paying for importing torch
    import torch

Modality = Literal["video", "audio"]


@dataclass(frozen=True, slots=True)
class WorkItem:
    """An item as a worker sees it: video is H x W x 3 uint8, audio is (n,) float32."""

    stream: str
    modality: Modality
    seq: int
    pts: float
    tensor: torch.Tensor
    rate: int = 0  # audio sample rate


class Analyzer(Protocol):
    name: ClassVar[str]
    modality: ClassVar[Modality]

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]: ...


class UnknownAnalyzerError(ValueError):
    pass


def _builtin() -> dict[str, Callable[[], Analyzer]]:  # imports torch
    from daemon.workers.analyzers.level import LevelAnalyzer
    from daemon.workers.analyzers.motion import MotionAnalyzer

    factories: dict[str, Callable[[], Analyzer]] = {
        "motion": MotionAnalyzer,
        "level": LevelAnalyzer,
    }
    return factories


# Name -> modality of every built-in analyzer, known without importing any of them.
BUILTIN: dict[str, Modality] = {"motion": "video", "level": "audio"}


def available(modality: Modality) -> list[str]:
    return sorted(n for n, m in BUILTIN.items() if m == modality)


def check_names(names: list[str], modality: Modality) -> None:
    """Raise UnknownAnalyzerError for a name that is not a `modality` analyzer."""
    for name in names:
        if BUILTIN.get(name) != modality:
            raise UnknownAnalyzerError(
                f"unknown {modality} analyzer {name!r}; available: {', '.join(available(modality))}"
            )


def build(names: list[str], modality: Modality) -> list[Analyzer]:
    """Instantiate the named analyzers, refusing unknown names or the wrong modality."""
    check_names(names, modality)
    registry = _builtin()
    return [registry[name]() for name in names]
