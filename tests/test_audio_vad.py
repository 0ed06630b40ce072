"""Voice activity with silero-vad's real weights on real espeak-ng speech."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from daemon.workers.analyzers import WorkItem
from daemon.workers.analyzers.silero import FRAME, SileroState, SileroVad, load_jit
from daemon.workers.analyzers.vad import VadAnalyzer
from tests.conftest import ROOT
from tests.support.audio_media import chunks, feed, speech_with_gaps, write_wav

PHRASES = [
    "The quick brown fox jumps over the lazy dog.",
    "Streams of audio arrive in chunks.",
    "Then speech begins again.",
]
GAPS = [1.0, 1.5, 0.8, 2.0]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, float]]]:
    samples, rate, truth = speech_with_gaps(PHRASES, GAPS)
    return write_wav(tmp_path_factory.mktemp("vad") / "speech.wav", samples, rate), truth


def spans(outs: list[dict[str, object]]) -> list[tuple[float, float]]:
    starts = [t for o in outs for t in o["speech_starts"]]  # type: ignore[attr-defined]
    ends = [t for o in outs for t in o["speech_ends"]]  # type: ignore[attr-defined]
    return list(zip(starts, ends, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("rate", [16000, 48000])
def test_speech_spans_match_the_known_espeak_spans(
    speech: tuple[Path, list[tuple[float, float]]], rate: int
) -> None:
    path, truth = speech
    outs = feed(VadAnalyzer(), chunks(path, rate=rate))
    found = spans(outs)
    assert len(found) == len(truth)
    for (start, end), (true_start, true_end) in zip(found, truth, strict=True):
        assert start == pytest.approx(true_start, abs=0.3)
        assert end == pytest.approx(true_end, abs=0.3)
    assert not outs[0]["speech"]  # the leading second is silence
    assert max(o["speech_prob_max"] for o in outs) > 0.9  # type: ignore[type-var]


@pytest.mark.slow
def test_batched_probabilities_equal_silero_frame_by_frame(
    speech: tuple[Path, list[tuple[float, float]]],
) -> None:
    path, _ = speech
    x = torch.cat([item.tensor for item in chunks(path)])[: 200 * FRAME]
    jit = load_jit()
    jit.reset_states()
    with torch.inference_mode():
        frames = x.split(FRAME)
        reference = torch.tensor([float(jit(frame, 16000)) for frame in frames])
    vad, state = SileroVad(jit), SileroState()
    batched = torch.cat([vad.probabilities(part, state) for part in x.split(37 * FRAME)])
    # The batched forward reduces in another order than one frame at a time, and the
    # vector width differs between x86-64 CPUs (2.2e-5 apart seen on an AMD EPYC); a
    # wrong state carried between frames moves a probability by far more than 1e-3.
    assert torch.allclose(batched, reference, atol=1e-3)
    assert (batched > 0.5).tolist() == (reference > 0.5).tolist()


@pytest.mark.slow
def test_interleaved_streams_get_the_same_answers_as_alone(
    speech: tuple[Path, list[tuple[float, float]]],
) -> None:
    path, _ = speech
    a = chunks(path, stream="a")
    alone = feed(VadAnalyzer(), a)
    silent = [WorkItem("b", "audio", i, i * 0.5, torch.zeros(8000), 16000) for i in range(len(a))]
    analyzer = VadAnalyzer()
    mixed = []
    for item_a, item_b in zip(a, silent, strict=True):
        mixed.append(analyzer.analyze(item_a))
        assert analyzer.analyze(item_b)["speech"] is False
    assert mixed == alone


def test_a_gap_restarts_the_stream_state() -> None:
    rng = np.random.default_rng(1)
    noise = torch.from_numpy(rng.uniform(-0.3, 0.3, 8000).astype(np.float32))
    analyzer = VadAnalyzer()
    first = analyzer.analyze(WorkItem("s", "audio", 0, 0.0, noise, 16000))
    fresh = VadAnalyzer().analyze(WorkItem("s", "audio", 9, 30.0, noise, 16000))
    after_gap = analyzer.analyze(WorkItem("s", "audio", 9, 30.0, noise, 16000))
    assert after_gap == fresh
    assert first["speech_prob"] == fresh["speech_prob"]


@pytest.mark.slow
def test_loading_silero_keeps_the_worker_thread_setting() -> None:
    # In a fresh process: importing silero_vad the first time is what resets threads.
    code = (
        "import torch; torch.set_num_threads(2)\n"
        "from daemon.workers.analyzers.silero import load_jit; load_jit()\n"
        "print(torch.get_num_threads())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "2", out.stderr
