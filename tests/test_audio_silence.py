"""Silence against FFmpeg's silencedetect, and clipping on files with known clipping."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from daemon.workers.analyzers import WorkItem
from daemon.workers.analyzers.clipping import ClippingAnalyzer
from daemon.workers.analyzers.silence import SilenceAnalyzer
from daemon.workers.analyzers.specs import ClippingOptions, SilenceOptions
from tests.support.audio_media import Part, chunks, feed, silencedetect, synthesize, write_wav

# Gaps of several lengths, some shorter than the minimum, one of faint noise below the
# threshold, starting and ending at times that do not fall on chunk boundaries.
GAPS = [
    Part(1.3, 440, 0.5),
    Part(2.37),
    Part(0.9, 300, 0.3),
    Part(0.6),
    Part(1.0, 0, 0.2),
    Part(0.3),
    Part(0.8, 1000, 0.1),
    Part(3.1, 0, 0.0005),
    Part(1.0, 800, 0.1),
    Part(2.5),
]


def spans(outs: list[dict[str, object]]) -> list[tuple[float, float | None]]:
    starts = [t for o in outs for t in o["silence_starts"]]  # type: ignore[attr-defined]
    ends = [t for o in outs for t in o["silence_ends"]]  # type: ignore[attr-defined]
    return [(s, ends[i] if i < len(ends) else None) for i, s in enumerate(starts)]


@pytest.mark.parametrize(("noise_db", "duration_s"), [(-50, 0.5), (-60, 2.0), (-30, 1.0)])
def test_silence_agrees_with_ffmpeg_silencedetect(
    tmp_path: Path, noise_db: float, duration_s: float
) -> None:
    path = write_wav(tmp_path / "gaps.wav", synthesize(GAPS))
    reference = silencedetect(path, noise_db, duration_s)
    options = SilenceOptions(threshold_dbfs=noise_db, min_duration_s=duration_s)
    found = spans(feed(SilenceAnalyzer(options), chunks(path)))
    assert len(found) == len(reference) >= 2
    total = sum(p.seconds for p in GAPS)
    for (start, end), (ref_start, ref_end) in zip(found, reference, strict=True):
        assert start == pytest.approx(ref_start, abs=0.2)
        # FFmpeg closes a silence still open at the end of the file; we leave it open.
        assert end == pytest.approx(ref_end if ref_end < total - 0.01 else None, abs=0.2)


def test_silence_state_across_chunks_and_streams() -> None:
    analyzer = SilenceAnalyzer(SilenceOptions(min_duration_s=1.0))
    zero = torch.zeros(8000)
    out = [analyzer.analyze(WorkItem("a", "audio", i, i * 0.5, zero, 16000)) for i in range(3)]
    assert [o["silent"] for o in out] == [False, True, True]
    assert out[1]["silence_starts"] == [0.0]
    assert out[2]["silence_s"] == 1.5
    # Another stream interleaved does not disturb the first.
    tone = torch.ones(8000) * 0.5
    assert analyzer.analyze(WorkItem("b", "audio", 0, 0.0, tone, 16000))["silent"] is False
    end = analyzer.analyze(WorkItem("a", "audio", 3, 1.5, tone, 16000))
    assert end["silence_ends"] == [1.5]
    assert end["silent"] is False


def test_clipping_finds_a_clipped_tone_not_a_clean_one(tmp_path: Path) -> None:
    parts = [Part(1.0, 440, 0.9), Part(1.0, 440, 2.0, clip_at=1.0), Part(1.0, 440, 0.9)]
    path = write_wav(tmp_path / "clipped.wav", synthesize(parts))
    outs = feed(ClippingAnalyzer(), chunks(path))
    flags = [o["clipping"] for o in outs]
    assert flags == [False, False, True, True, False, False]
    # A sine at twice full scale clipped to 1 spends 2/3 of its time clipped.
    assert outs[2]["clipped_ratio"] == pytest.approx(2 / 3, abs=0.06)
    assert outs[2]["clips"] == pytest.approx(440, abs=5)  # one per half cycle, 0.5 s


def test_clipping_threshold_and_min_run_options() -> None:
    x = torch.zeros(1000)
    x[100:102] = 0.999  # a run of 2: below min_run 3
    x[500:510] = -1.0
    out = ClippingAnalyzer().analyze(WorkItem("s", "audio", 0, 0.0, x, 16000))
    assert out == {
        "clipped_ratio": 0.012,
        "clipped_samples": 12,
        "clips": 1,
        "clipping": True,
        "clipping_starts": [round(500 / 16000, 4)],
        "clipping_ends": [],
    }
    strict = ClippingAnalyzer(ClippingOptions(threshold_dbfs=-0.001, min_run=1))
    assert strict.analyze(WorkItem("s", "audio", 0, 0.0, x, 16000))["clips"] == 1
