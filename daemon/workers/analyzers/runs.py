"""Runs of consecutive true samples in a boolean mask, found with vectorized torch ops."""

from __future__ import annotations

import torch


def runs(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(starts, ends) of every run of True in a 1-D bool tensor; ends are exclusive."""
    padded = torch.zeros(mask.numel() + 2, dtype=torch.int8)
    padded[1:-1] = mask.to(torch.int8)
    edges = padded[1:] - padded[:-1]
    starts = torch.nonzero(edges == 1).flatten()
    ends = torch.nonzero(edges == -1).flatten()
    return starts, ends


def amplitude(dbfs: float) -> float:
    return float(10 ** (dbfs / 20))
