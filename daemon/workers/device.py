"""Where and how a worker computes: the torch device, the precision, the memory share.

One `Runtime` per worker process, built once from its command line and handed to every
analyzer that prefers an accelerator, so a model is loaded once per worker on the right
device and shared by all streams.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch

Precision = Literal["fp32", "fp16", "bf16"]
DEVICE_PATTERN = r"^(auto|cpu|cuda|cuda:\d+)$"
_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}


class DeviceError(ValueError):
    """A device that this machine does not have, or a precision it cannot run."""


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: Precision = "fp32"
    compile: bool = False

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.precision]

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """Mixed precision for fp16/bf16; nothing for fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def memory_bytes(self) -> int:
        """Accelerator memory held by tensors of this process (0 on the CPU)."""
        return int(torch.cuda.memory_allocated(self.device)) if self.is_cuda else 0


def resolve_device(name: str) -> torch.device:
    """ "auto" takes the first GPU when there is one; "cuda" needs one; "cuda:N" needs N."""
    if not re.match(DEVICE_PATTERN, name):
        raise DeviceError(f"device {name!r}: use auto, cpu, cuda or cuda:N")
    if name == "cpu":
        return torch.device("cpu")
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name == "auto":
        return torch.device("cuda:0") if available else torch.device("cpu")
    index = int(name.partition(":")[2] or 0)
    if index >= available:
        raise DeviceError(f"device {name!r}: this machine has {available} CUDA device(s)")
    return torch.device(f"cuda:{index}")


def make_runtime(
    device: str = "cpu",
    precision: Precision = "fp32",
    memory_fraction: float = 1.0,
    compile_models: bool = False,
) -> Runtime:
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
        if memory_fraction < 1.0:
            # Several workers may share one GPU; each keeps to its share.
            torch.cuda.set_per_process_memory_fraction(memory_fraction, resolved)
    return Runtime(resolved, precision, compile_models)


@contextlib.contextmanager
def inference(runtime: Runtime) -> Iterator[None]:
    with torch.inference_mode(), runtime.autocast():
        yield
