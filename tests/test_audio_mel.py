"""Mel-band energies on tones and noise with known power."""

from __future__ import annotations

import math

import pytest
import torch

from daemon.workers.analyzers import WorkItem, validate_options
from daemon.workers.analyzers.mel import MelAnalyzer, band_names
from daemon.workers.analyzers.specs import MelOptions
from tests.support.audio_media import Part, synthesize


def item(samples: torch.Tensor, rate: int = 16000) -> WorkItem:
    return WorkItem("s", "audio", 0, 0.0, samples, rate)


def total_db(out: dict[str, object]) -> float:
    return 10 * math.log10(sum(10 ** (float(v) / 10) for v in out.values()))  # type: ignore[arg-type]


@pytest.mark.parametrize("hz", [500, 1000, 3000])
def test_a_tone_lands_in_its_bands_and_the_bands_add_up_to_its_power(hz: float) -> None:
    x = torch.from_numpy(synthesize([Part(0.5, hz, 0.5)], rate=16000))
    out = MelAnalyzer().analyze(item(x))
    assert list(out) == band_names(8)
    assert total_db(out) == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.1)
    loudest = sorted(out.values(), reverse=True)  # type: ignore[type-var]
    assert loudest[2] < loudest[0] - 25  # at most two neighbouring bands share the tone


def test_higher_tones_land_in_higher_bands() -> None:
    mel = MelAnalyzer(MelOptions(bands=16))
    peaks = []
    for hz in (200, 800, 2000, 6000):
        out = mel.analyze(item(torch.from_numpy(synthesize([Part(0.5, hz, 0.5)], rate=16000))))
        values = list(out.values())
        peaks.append(values.index(max(values)))  # type: ignore[type-var]
    assert peaks == sorted(peaks)
    assert len(set(peaks)) == 4


def test_rate_and_silence_and_short_chunks() -> None:
    mel = MelAnalyzer(MelOptions(bands=4, fmax_hz=4000))
    assert set(mel.analyze(item(torch.zeros(8000))).values()) == {-100.0}
    short = mel.analyze(item(torch.ones(100) * 0.1, rate=8000))
    assert len(short) == 4
    x = torch.from_numpy(synthesize([Part(0.5, 1000, 0.5)], rate=48000))
    assert total_db(mel.analyze(item(x, rate=48000))) == pytest.approx(-9.03, abs=0.2)


def test_bad_options_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"mel\.hop_ms"):
        validate_options("mel", "audio", {"window_ms": 10, "hop_ms": 20})
    with pytest.raises(ValueError, match=r"mel\.bands"):
        validate_options("mel", "audio", {"bands": 0})
