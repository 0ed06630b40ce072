"""How many GPUs this host shows its workers, without importing torch (tandemd uses it
to start one vision worker per GPU and give each its device)."""

from __future__ import annotations

import os
from pathlib import Path

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def visible_gpus(env: dict[str, str] | None = None, proc: Path = NVIDIA_GPUS) -> int:
    """NVIDIA GPUs the driver lists, limited by CUDA_VISIBLE_DEVICES when it is set."""
    try:
        present = sum(1 for _ in proc.iterdir())
    except OSError:
        return 0
    visible = (env if env is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return present
    listed = [d for d in visible.split(",") if d.strip()]
    if listed and listed[0].strip() == "-1":
        return 0
    return min(present, len(listed))


def local_workers(n: int, device: str, gpus: int) -> list[str]:
    """The device of each of a pool's `n` local workers (`count` resolved by the config)."""
    if device in ("auto", "cuda") and gpus > 0:
        return [f"cuda:{i % gpus}" for i in range(n)]
    return [device] * n
