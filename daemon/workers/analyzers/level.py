"""Level: RMS and peak of a chunk in dBFS, with torchaudio's amplitude-to-dB."""

from __future__ import annotations

from typing import ClassVar

import torch
import torchaudio.functional as taf

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.specs import LevelOptions


class LevelAnalyzer:
    """rms_dbfs and peak_dbfs of the chunk; a full-scale sine reads -3.01 and 0."""

    name: ClassVar[str] = "level"
    modality: ClassVar[Modality] = "audio"

    def __init__(self, options: LevelOptions | None = None) -> None:
        self.options = options or LevelOptions()

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        x = item.tensor
        amplitudes = torch.stack([x.square().mean().sqrt(), x.abs().max()])
        db = taf.amplitude_to_DB(
            amplitudes,
            multiplier=20.0,
            amin=10 ** (self.options.floor_dbfs / 20),
            db_multiplier=0.0,
        )
        rms, peak = db.tolist()
        return {"rms_dbfs": round(rms, 3), "peak_dbfs": round(peak, 3)}
