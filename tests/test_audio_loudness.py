"""Loudness (BS.1770 / EBU R128) against FFmpeg's ebur128 on the same mono files, fed
through the analyzer chunk by chunk exactly as a worker receives them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torchaudio.functional as taf

from daemon.workers.analyzers import WorkItem
from daemon.workers.analyzers.loudness import LoudnessAnalyzer
from tests.support.audio_media import Part, chunks, ebur128, feed, synthesize, write_wav
from tests.support.media import encode_clip

# Tones below 8 kHz at several levels with silent gaps (which the gates must exclude).
PROGRAM = [
    Part(3.0, 1000, 0.5),
    Part(2.0),
    Part(4.0, 440, 0.05),
    Part(3.0, 3000, 0.2),
    Part(1.5),
    Part(3.0, 200, 0.7),
]


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wav(tmp_path_factory.mktemp("loud") / "program.wav", synthesize(PROGRAM))


def test_integrated_and_short_term_agree_with_ffmpeg_ebur128(program: Path) -> None:
    integrated, frames = ebur128(program)
    items = chunks(program, rate=16000, chunk_ms=500)
    outs = feed(LoudnessAnalyzer(), items)
    assert outs[-1]["integrated_lufs"] == pytest.approx(integrated, abs=0.5)
    # FFmpeg logs every 100 ms; compare short-term and momentary at each chunk's end.
    reference = {round(t, 1): (m, s) for t, m, s in frames}
    compared = 0
    for item, out in zip(items, outs, strict=True):
        t = round(item.pts + item.tensor.numel() / item.rate, 1)
        if t < 3.0 or t not in reference:
            continue
        momentary, short_term = reference[t]
        assert out["short_term_lufs"] == pytest.approx(short_term, abs=0.5), t
        if not math.isnan(momentary) and momentary > -70:
            assert out["momentary_lufs"] == pytest.approx(momentary, abs=0.5), t
        compared += 1
    assert compared >= 25


@pytest.mark.slow
def test_full_band_noise_agrees_at_48k_and_reads_lower_at_16k(tmp_path: Path) -> None:
    # White noise has energy up to 24 kHz, which a 16 kHz worker rate cannot carry.
    path = write_wav(tmp_path / "noise.wav", synthesize([Part(6.0, 0, 0.3)]))
    integrated, _ = ebur128(path)
    full = feed(LoudnessAnalyzer(), chunks(path, rate=48000))[-1]["integrated_lufs"]
    assert full == pytest.approx(integrated, abs=0.5)
    narrow = feed(LoudnessAnalyzer(), chunks(path, rate=16000))[-1]["integrated_lufs"]
    assert isinstance(narrow, float)
    assert narrow < integrated - 3


def test_chunking_does_not_change_the_result_and_matches_torchaudio() -> None:
    # Halved: torchaudio clamps its filter output to +-1, the +4 dB shelf would exceed it.
    x = torch.from_numpy(synthesize(PROGRAM, rate=16000)) * 0.5
    whole = LoudnessAnalyzer().analyze(WorkItem("s", "audio", 0, 0.0, x, 16000))
    analyzer = LoudnessAnalyzer()
    step = 7000  # chunks that do not align with the 100 ms blocks
    out = {}
    for seq, start in enumerate(range(0, x.numel(), step)):
        item = WorkItem("s", "audio", seq, start / 16000, x[start : start + step], 16000)
        out = analyzer.analyze(item)
    assert out["integrated_lufs"] == pytest.approx(whole["integrated_lufs"], abs=0.01)
    assert out["short_term_lufs"] == pytest.approx(whole["short_term_lufs"], abs=0.01)
    # torchaudio's offline BS.1770 approximates the K-filter (shelf at 1.5 kHz, not 1.68).
    reference = float(taf.loudness(x[None].double(), 16000))
    assert out["integrated_lufs"] == pytest.approx(reference, abs=0.2)


def test_state_is_per_stream_and_resets_on_a_gap() -> None:
    loud = torch.from_numpy(synthesize([Part(0.5, 1000, 0.5)], rate=16000))
    quiet = loud * 0.01
    analyzer = LoudnessAnalyzer()
    for seq in range(8):  # two streams interleaved, 4 s each
        a = analyzer.analyze(WorkItem("a", "audio", seq, seq * 0.5, loud, 16000))
        b = analyzer.analyze(WorkItem("b", "audio", seq, seq * 0.5, quiet, 16000))
    assert isinstance(a["integrated_lufs"], float)
    assert isinstance(b["integrated_lufs"], float)
    assert a["integrated_lufs"] - b["integrated_lufs"] == pytest.approx(40, abs=0.1)
    # A seq gap (the stream came from another worker): no short-term window yet.
    after = analyzer.analyze(WorkItem("a", "audio", 20, 10.0, loud, 16000))
    assert after["short_term_lufs"] is None
    assert after["momentary_lufs"] == pytest.approx(a["momentary_lufs"], abs=0.01)


def test_digital_silence_reads_the_floor_and_no_integrated() -> None:
    analyzer = LoudnessAnalyzer()
    out = analyzer.analyze(WorkItem("s", "audio", 0, 0.0, torch.zeros(8000), 16000))
    assert out == {
        "momentary_lufs": -100.0,
        "momentary_max_lufs": -100.0,
        "short_term_lufs": None,
        "integrated_lufs": None,
    }


def test_identical_stereo_downmix_reads_as_bs1770_of_the_pair(tmp_path: Path) -> None:
    # FFmpeg's mono downmix of identical channels is 3 dB above either channel, which is
    # what BS.1770 sums over the two channels; uncorrelated channels would read 3 dB low.
    path = encode_clip(
        tmp_path / "stereo.mkv", seconds=4.0, tone_hz=1000, amplitude=0.3, video=False
    )
    integrated, _ = ebur128(path)
    out = feed(LoudnessAnalyzer(), chunks(path))[-1]
    assert out["integrated_lufs"] == pytest.approx(integrated, abs=0.5)
