"""The analyzer plugin interface. Importing this module does not import torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from daemon.wire.protocol import JsonValue
from daemon.wire.vocabulary import Modality as Modality  # noqa: PLC0414 (re-exported for analyzers)

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, slots=True)
class WorkItem:
    """An item as a worker sees it: video is H x W x 3 uint8 RGB, audio is (n,) float32
    mono. A stream with `audio_channels` > 1 also carries `channels`, (channels, n), and
    the item's samples are then their average, so every analyzer still gets mono.

    `data` is a NumPy array as the worker builds it (a torch tensor also does, as tests
    and benches pass): analyzers read it as `array` (NumPy, what OpenCV takes) or as
    `tensor` (torch), both views of the same memory. Only `tensor` imports torch, so a
    worker whose analyzers all read `array` never loads it.
    """

    stream: str
    modality: Modality
    seq: int
    pts: float
    data: np.ndarray | torch.Tensor  # read-only: it may wrap a ZeroMQ buffer; never write
    rate: int = 0  # audio sample rate
    duration: float = 0.0  # video: the sampling interval in seconds (0 = unknown)
    channel_data: np.ndarray | torch.Tensor | None = None  # (channels, n), more than one
    skip: frozenset[str] = frozenset()  # on-demand analyzers not switched on for the stream

    @property
    def array(self) -> np.ndarray:
        """The item as a NumPy array (no copy)."""
        return _as_array(self.data)

    @property
    def tensor(self) -> torch.Tensor:
        """The item as a torch tensor (no copy); imports torch."""
        return _as_tensor(self.data)

    @property
    def channels(self) -> torch.Tensor | None:
        """Audio with more than one channel as a (channels, n) tensor; imports torch."""
        return None if self.channel_data is None else _as_tensor(self.channel_data)


def _as_array(data: np.ndarray | torch.Tensor) -> np.ndarray:
    return data if isinstance(data, np.ndarray) else data.numpy()


def _as_tensor(data: np.ndarray | torch.Tensor) -> torch.Tensor:
    if not isinstance(data, np.ndarray):
        return data
    import torch  # here: only analyzers that use torch pay for it

    return torch.from_numpy(data)


class Analyzer(Protocol):
    """Turns one item into a flat JSON-able dict of outputs (numbers, booleans, None,
    short lists). State that spans items is kept per stream inside the analyzer."""

    name: ClassVar[str]
    modality: ClassVar[Modality]

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]: ...


@runtime_checkable
class BatchAnalyzer(Protocol):
    """An analyzer that also takes many items in one call (one forward for a model).

    The worker calls `analyze_batch` with items of one input size, from any streams, in
    arrival order, and expects one output dict per item. It may raise
    torch.cuda.OutOfMemoryError: the worker then halves the batch and retries.
    """

    name: ClassVar[str]
    modality: ClassVar[Modality]

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]: ...

    def analyze_batch(self, items: list[WorkItem]) -> list[dict[str, JsonValue]]: ...


@runtime_checkable
class WarmsUp(Protocol):
    """An analyzer with a slow first call (model load, kernel selection): the worker
    calls `warmup` once before it registers, so the first real frame is not slow."""

    def warmup(self, batch_size: int) -> None: ...


class Options(BaseModel):
    """Base of every analyzer's options: unknown keys are errors at config load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoOptions(Options):
    pass


@dataclass(frozen=True)
class AnalyzerSpec:
    """What the config needs to know of an analyzer, without importing its code.

    `factory` is "module:attribute", imported only inside a worker and called with the
    validated options, and also with the worker's `Runtime` (device, precision) when
    `device` is "accelerator". `outputs` is the output schema: output name -> JSON type
    ("number", "integer", "boolean", "string", "array"; a trailing "?" allows null or
    absence; a name ending in "*" is a prefix for several outputs). `uses_torch` False says the
    analyzer never touches torch (it reads items as `array`): a worker whose analyzers
    all say so does not import torch. Third parties publish a spec under the
    `tandem.analyzers` entry point group.
    """

    name: str
    modality: Modality
    factory: str
    options: type[Options] = field(default=NoOptions)
    description: str = ""
    device: Literal["cpu", "accelerator"] = "cpu"
    outputs: dict[str, str] = field(default_factory=dict)
    uses_torch: bool = True

    def output_schema(self) -> dict[str, Any]:
        """A JSON schema for one item's outputs of this analyzer."""
        fixed: dict[str, Any] = {}
        patterns: dict[str, Any] = {}
        for key, kind in self.outputs.items():
            base = {"type": [kind.rstrip("?"), "null"] if kind.endswith("?") else kind}
            if key.endswith("*"):
                patterns["^" + key[:-1].replace(".", "\\.")] = base
            else:
                fixed[key] = base
        return {
            "type": "object",
            "properties": fixed,
            "patternProperties": patterns,
            "required": sorted(k for k in fixed if not self.outputs[k].endswith("?")),
            "additionalProperties": False,
        }


class UnknownAnalyzerError(ValueError):
    pass
