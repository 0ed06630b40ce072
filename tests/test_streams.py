"""Ingest against real encoded media: sampling, scaling, the shared timeline, audio format."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from streams import AudioChunk, SourceError, SourceSpec, SourceStats, VideoFrame, open_source
from streams.sampling import FpsSampler
from tests.support.media import encode_clip


def test_file_is_sampled_scaled_and_stamped(media: dict[str, Path]) -> None:
    stats = SourceStats()
    spec = SourceSpec("a", str(media["a"]), fps=5, width=160, height=90)
    items = list(open_source(spec, stats))
    video = [i for i in items if isinstance(i, VideoFrame)]
    audio = [i for i in items if isinstance(i, AudioChunk)]
    assert stats.video_frames_decoded == 120  # 4 s at 30 fps, every frame decoded
    assert len(video) == 20 == stats.video_frames_sampled  # 5 fps kept
    assert [round(v.pts, 3) for v in video] == [round(i * 0.2, 3) for i in range(20)]
    assert all(v.image.shape == (90, 160, 3) and v.image.dtype == np.uint8 for v in video)
    assert [v.seq for v in video] == list(range(20))
    # Audio: mono float32 at 16 kHz in 0.5 s chunks that tile the timeline from 0.
    assert audio[0].pts == 0.0
    for prev, nxt in itertools.pairwise(audio):
        assert nxt.pts == pytest.approx(prev.pts + prev.duration)
    assert all(a.samples.dtype == np.float32 and a.sample_rate == 16000 for a in audio)
    assert sum(len(a.samples) for a in audio) == pytest.approx(4.0 * 16000, rel=0.01)


def test_video_only_file_yields_only_frames(tmp_path: Path) -> None:
    clip = encode_clip(tmp_path / "v.mp4", seconds=1.0, audio=False)
    items = list(open_source(SourceSpec("v", str(clip), fps=10, width=64, height=48)))
    assert items and all(isinstance(i, VideoFrame) for i in items)


def test_unopenable_url_names_stream_and_url() -> None:
    spec = SourceSpec("cam7", "/nonexistent/clip.mp4")
    with pytest.raises(SourceError, match=r"stream 'cam7' \(/nonexistent/clip.mp4\): cannot open"):
        list(open_source(spec))


def test_sampler_keeps_every_nth_frame_of_a_steady_source() -> None:
    sampler = FpsSampler(10)
    kept = [i for i in range(30) if sampler.keep(i / 30)]
    assert kept == list(range(0, 30, 3))


def test_sampler_restarts_its_grid_after_a_gap() -> None:
    sampler = FpsSampler(5)
    assert sampler.keep(0.0)
    assert sampler.keep(10.0)  # a jump forward: keep, without a burst of catch-up frames
    assert not sampler.keep(10.1)
    assert sampler.keep(10.2)
