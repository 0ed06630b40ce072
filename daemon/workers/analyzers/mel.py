"""Mel-band energies: the chunk's mean power in each of `bands` mel bands, in dB, with
torchaudio's MelSpectrogram (window `window_ms`, hop `hop_ms`, within the chunk)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torchaudio.functional as taf
import torchaudio.transforms as tat

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.specs import MelOptions


def band_names(bands: int) -> list[str]:
    return [f"band_{i:02d}_db" for i in range(bands)]


class MelAnalyzer:
    """band_00_db ... band_NN_db, lowest band first: the chunk's mean power in each mel
    band in dBFS, scaled so that the bands' powers add up to the chunk's mean square
    (a sine of RMS -9 dBFS reads -9 in its band when it sits at the band's centre)."""

    name: ClassVar[str] = "mel"
    modality: ClassVar[Modality] = "audio"

    def __init__(self, options: MelOptions | None = None) -> None:
        self.options = options or MelOptions()
        self._names = band_names(self.options.bands)
        self._transforms: dict[int, tat.MelSpectrogram] = {}

    def _transform(self, rate: int) -> tat.MelSpectrogram:
        found = self._transforms.get(rate)
        if found is None:
            o = self.options
            n_fft = max(2, round(o.window_ms * rate / 1000))
            fmax = min(o.fmax_hz or rate / 2, rate / 2)
            if fmax <= o.fmin_hz:
                raise ValueError(f"fmin_hz {o.fmin_hz} is not below half the rate {rate}")
            found = tat.MelSpectrogram(
                sample_rate=rate,
                n_fft=n_fft,
                hop_length=max(1, round(o.hop_ms * rate / 1000)),
                f_min=o.fmin_hz,
                f_max=fmax,
                n_mels=o.bands,
                center=False,
                power=2.0,
                norm=None,  # triangles peaking at 1 sum to 1 across the bands: power adds up
            )
            self._transforms[rate] = found
        return found

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        transform = self._transform(item.rate)
        x = item.tensor.float()
        if x.numel() < transform.n_fft:
            x = torch.nn.functional.pad(x, (0, transform.n_fft - x.numel()))
        # One-sided power spectrum of a periodic Hann window (sum of squares 3N/8), scaled
        # so that the bins of a frame sum to its mean square: 2|X|^2 / (N * 3N/8).
        n = transform.n_fft
        power = transform(x).mean(dim=-1) / (3 * n * n / 16)
        floor = 10 ** (self.options.floor_db / 10)
        db = taf.amplitude_to_DB(power, multiplier=10.0, amin=floor, db_multiplier=0.0)
        return {name: round(v, 2) for name, v in zip(self._names, db.tolist(), strict=True)}
