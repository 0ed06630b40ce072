"""The vision worker benchmark on a CUDA GPU, fp32 and fp16. Skips itself (no rows)
without one: GPU figures are only ever quoted from a run on a GPU."""

from __future__ import annotations

import sys

import torch

from bench.core import Row
from bench.vision import rows_for


def run(quick: bool) -> list[Row]:
    if not torch.cuda.is_available():
        print("bench: gpu: skipped, no CUDA device on this machine", file=sys.stderr)
        return []
    out: list[Row] = []
    for precision in ("fp32", "fp16"):
        out.extend(rows_for("cuda", precision, quick))  # type: ignore[arg-type]
    return out
