"""ITU-R BS.1770-4 building blocks: the K-weighting filter at any rate, and the gated
integration over 400 ms blocks kept in a bounded histogram.

The filter coefficients come from the analog prototype parameters libebur128 (and so
FFmpeg's ebur128 filter) derives from BS.1770's 48 kHz table, so they are exact at
48 kHz and the same curve at the worker rate.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchaudio.functional as taf

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
LOUDNESS_OFFSET = -0.691  # BS.1770: L = -0.691 + 10 log10(sum of weighted mean squares)
_BIN_LU = 0.1
_TOP_LUFS = 10.0  # a 400 ms block cannot be louder than ~+3.7 LUFS (full-scale square)


def lufs(power: float) -> float:
    """Loudness of a K-weighted mean square; -inf for digital silence."""
    return LOUDNESS_OFFSET + 10 * math.log10(power) if power > 0 else -math.inf


def k_weighting(rate: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(b, a) of the high-shelf stage, then of the high-pass stage, float64."""
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf_b = [
        (vh + vb * k / q + k * k) / a0,
        2 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
    ]
    shelf_a = [1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1 + k / q + k * k
    hp_b = [1.0, -2.0, 1.0]
    hp_a = [1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    as64 = [torch.tensor(c, dtype=torch.float64) for c in (shelf_b, shelf_a, hp_b, hp_a)]
    return as64[0], as64[1], as64[2], as64[3]


def apply_k_weighting(
    samples: torch.Tensor, coefficients: tuple[torch.Tensor, ...]
) -> torch.Tensor:
    shelf_b, shelf_a, hp_b, hp_a = coefficients
    # clamp=False: the +4 dB shelf lifts loud content above full scale, which is correct.
    y = taf.lfilter(samples.double(), shelf_a, shelf_b, clamp=False)
    out: torch.Tensor = taf.lfilter(y, hp_a, hp_b, clamp=False)
    return out


class GatedIntegrator:
    """Integrated loudness over every 400 ms block seen, gated as BS.1770 says, in
    bounded memory: block powers are summed per 0.1 LU bin of block loudness. Only
    blocks within 0.1 LU of the relative gate may be misclassified."""

    def __init__(self) -> None:
        bins = round((_TOP_LUFS - ABSOLUTE_GATE_LUFS) / _BIN_LU)
        self._counts = np.zeros(bins, dtype=np.int64)
        self._powers = np.zeros(bins, dtype=np.float64)

    def add(self, power: float) -> None:
        loudness = lufs(power)
        if loudness <= ABSOLUTE_GATE_LUFS:
            return
        index = min(int((loudness - ABSOLUTE_GATE_LUFS) / _BIN_LU), len(self._counts) - 1)
        self._counts[index] += 1
        self._powers[index] += power

    def integrated(self) -> float | None:
        total = int(self._counts.sum())
        if total == 0:
            return None
        relative_gate = lufs(float(self._powers.sum()) / total) + RELATIVE_GATE_LU
        first = max(0, math.ceil((relative_gate - ABSOLUTE_GATE_LUFS) / _BIN_LU))
        counts = int(self._counts[first:].sum())
        if counts == 0:
            return None
        return lufs(float(self._powers[first:].sum()) / counts)
