"""The analyzer plugin interface. Importing this module does not import torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from daemon.protocol import JsonValue

if TYPE_CHECKING:
    import torch

Modality = Literal["video", "audio"]


@dataclass(frozen=True, slots=True)
class WorkItem:
    """An item as a worker sees it: video is H x W x 3 uint8 RGB, audio is (n,) float32."""

    stream: str
    modality: Modality
    seq: int
    pts: float
    tensor: torch.Tensor
    rate: int = 0  # audio sample rate


class Analyzer(Protocol):
    """Turns one item into a flat JSON-able dict of outputs (numbers, booleans, None,
    short lists). State that spans items is kept per stream inside the analyzer."""

    name: ClassVar[str]
    modality: ClassVar[Modality]

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]: ...


class Options(BaseModel):
    """Base of every analyzer's options: unknown keys are errors at config load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoOptions(Options):
    pass


@dataclass(frozen=True)
class AnalyzerSpec:
    """What the config needs to know of an analyzer, without importing its code.

    `factory` is "module:attribute", imported only inside a worker and called with the
    validated options. Third parties publish a spec under the `tandem.analyzers` entry
    point group.
    """

    name: str
    modality: Modality
    factory: str
    options: type[Options] = field(default=NoOptions)
    description: str = ""


class UnknownAnalyzerError(ValueError):
    pass
