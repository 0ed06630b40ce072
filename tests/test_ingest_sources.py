"""Ingest against real encoded files that misbehave: corruption, restarts, format changes."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np
import pytest

from streams import (
    AudioChunk,
    Finished,
    Opened,
    SourceSpec,
    SourceStats,
    VideoFrame,
    open_source,
    run_stream,
)
from tests.support.ingest_media import bframe_clip, concat_ts, corrupt, surround_tone, ts_clip
from tests.support.media import encode_clip


def split(items: list[object]) -> tuple[list[VideoFrame], list[AudioChunk]]:
    return (
        [i for i in items if isinstance(i, VideoFrame)],
        [i for i in items if isinstance(i, AudioChunk)],
    )


def assert_monotonic_without_gaps(times: list[float], max_gap: float) -> None:
    for prev, nxt in itertools.pairwise(times):
        assert prev <= nxt <= prev + max_gap, (prev, nxt)


def test_corrupted_file_decodes_to_its_end_with_errors_counted(tmp_path: Path) -> None:
    clean = encode_clip(tmp_path / "clean.ts", seconds=4.0, container="mpegts")
    broken = corrupt(clean, tmp_path / "broken.ts")
    stats = SourceStats()
    video, audio = split(list(open_source(SourceSpec("bad", str(broken), fps=5), stats)))
    assert stats.decode_errors + stats.corrupt_packets > 0
    assert video[-1].pts > 3.5  # reached the end, not stopped at the first damage
    assert audio[-1].pts + audio[-1].duration > 3.5
    # Frames lost to the damage leave holes, but time never goes back.
    assert_monotonic_without_gaps([v.pts for v in video], 1.5)


def test_transport_stream_whose_timestamps_restart_stays_continuous(tmp_path: Path) -> None:
    parts = [ts_clip(tmp_path / f"{i}.ts", seconds=2.0) for i in range(2)]
    glued = concat_ts(tmp_path / "restart.ts", parts)
    stats = SourceStats()
    video, audio = split(list(open_source(SourceSpec("ts", str(glued), fps=5), stats)))
    assert stats.ts_jumps >= 1  # counted (once per track)
    assert_monotonic_without_gaps([v.pts for v in video], 0.25)
    assert video[-1].pts == pytest.approx(3.8, abs=0.1)  # 4 s of media, not 2 s twice
    assert [round(a.pts, 3) for a in audio[:8]] == [i * 0.5 for i in range(8)]
    assert audio[-1].pts + audio[-1].duration == pytest.approx(4.0, abs=0.15)


def test_resolution_change_mid_stream_keeps_the_output_size(tmp_path: Path) -> None:
    parts = [ts_clip(tmp_path / "small.ts", 1.0), ts_clip(tmp_path / "wide.ts", 1.0, 480, 270)]
    glued = concat_ts(tmp_path / "change.ts", parts)
    stats = SourceStats()
    video, _ = split(list(open_source(SourceSpec("rc", str(glued), fps=10, audio=False), stats)))
    assert stats.format_changes == 1
    assert len(video) == 20 and {v.image.shape for v in video} == {(360, 640, 3)}
    # The square is white on grey in both halves: the content survived the change.
    assert all(int(v.image.max()) >= 240 for v in video)

    kept = SourceSpec("rc", str(glued), fps=10, audio=False, width=320, height=320)
    shapes = [
        v.image.shape for v in open_source(SourceSpec(**{**_asdict(kept), "keep_aspect": True}))
    ]
    assert shapes[0] == (240, 320, 3) and shapes[-1] == (180, 320, 3)


def _asdict(spec: SourceSpec) -> dict[str, object]:
    return {f: getattr(spec, f) for f in spec.__dataclass_fields__}


def test_surround_44k1_arrives_mono_at_the_worker_rate(tmp_path: Path) -> None:
    clip = surround_tone(tmp_path / "surround.m4a", seconds=2.0, rate=44100, hz=440)
    _, audio = split(list(open_source(SourceSpec("s", str(clip), audio_chunk_s=0.5))))
    samples = np.concatenate([a.samples for a in audio])
    assert all(a.sample_rate == 16000 and a.samples.ndim == 1 for a in audio)
    assert samples.dtype == np.float32 and len(samples) == pytest.approx(32000, rel=0.02)
    spectrum = np.abs(np.fft.rfft(samples[4000:20000]))
    assert np.argmax(spectrum) * 16000 / 16000 == pytest.approx(440, abs=2)  # 1 Hz bins


def test_sample_rate_change_mid_stream_is_resampled(tmp_path: Path) -> None:
    parts = [
        encode_clip(tmp_path / "48k.ts", seconds=1.0, video=False, container="mpegts"),
        encode_clip(
            tmp_path / "22k.ts", seconds=1.0, video=False, audio_rate=22050, container="mpegts"
        ),
    ]
    stats = SourceStats()
    glued = concat_ts(tmp_path / "rates.ts", parts)
    _, audio = split(list(open_source(SourceSpec("sr", str(glued), video=False), stats)))
    assert stats.format_changes == 1
    assert sum(len(a.samples) for a in audio) == pytest.approx(32000, rel=0.05)
    assert_monotonic_without_gaps([a.pts for a in audio], 0.51)


def test_separate_audio_url_shares_the_timeline(tmp_path: Path) -> None:
    picture = encode_clip(tmp_path / "v.mp4", seconds=2.0, audio=False)
    sound = encode_clip(tmp_path / "a.m4a", seconds=2.0, video=False)
    spec = SourceSpec("two", str(picture), audio_url=str(sound), fps=5)
    video, audio = split(list(open_source(spec)))
    assert len(video) == 10 and video[0].pts == pytest.approx(0.0, abs=0.05)
    assert audio[0].pts == pytest.approx(0.0, abs=0.05)
    assert sum(len(a.samples) for a in audio) == pytest.approx(2.0 * 16000, rel=0.05)


def test_start_offset_skips_the_beginning(tmp_path: Path) -> None:
    clip = encode_clip(tmp_path / "c.mp4", seconds=4.0)
    video, audio = split(list(open_source(SourceSpec("o", str(clip), fps=5, start_offset_s=2.5))))
    assert len(video) == 8 and video[0].pts == pytest.approx(0.0, abs=0.05)
    assert sum(len(a.samples) for a in audio) == pytest.approx(1.5 * 16000, rel=0.05)


def test_non_reference_frames_are_not_decoded_when_the_fps_allows(tmp_path: Path) -> None:
    clip = bframe_clip(tmp_path / "b.mp4", seconds=2.0)
    fast, slow = SourceStats(), SourceStats()
    kept = list(open_source(SourceSpec("b", str(clip), fps=5), fast))
    list(open_source(SourceSpec("b", str(clip), fps=5, skip_nonref=False), slow))
    assert slow.video_frames_decoded == 60
    assert fast.video_frames_decoded < 40  # B-frames skipped inside the decoder
    assert len(kept) == 10  # and the sampler still found a frame for every slot


def test_looped_file_carries_media_time_on(tmp_path: Path) -> None:
    clip = encode_clip(tmp_path / "l.mp4", seconds=1.0, audio=False)
    stop = threading.Event()
    times: list[float] = []
    opened = 0
    for event in run_stream(SourceSpec("loop", str(clip), fps=5, loop=True), SourceStats(), stop):
        opened += isinstance(event, Opened)
        if isinstance(event, VideoFrame):
            times.append(event.pts)
            if len(times) == 15:
                stop.set()
        assert not isinstance(event, Finished) or event.reason == "stopped"
    assert opened == 3
    assert times == pytest.approx([i * 0.2 for i in range(15)], abs=0.05)


def test_hwaccel_cuda_without_a_gpu_falls_back_to_software_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from streams.decode import _cuda_problem

    if not _cuda_problem():
        pytest.skip("a CUDA device is present: this checks the fallback")
    clip = encode_clip(tmp_path / "c.mp4", seconds=1.0, audio=False)
    with caplog.at_level("WARNING", logger="streams"):
        video, _ = split(list(open_source(SourceSpec("gpu", str(clip), fps=5, hwaccel="cuda"))))
    assert len(video) == 5
    assert "stream 'gpu': hwaccel = cuda but no CUDA device is available" in caplog.text


def test_surround_kept_as_5_1_when_the_stream_asks_for_six_channels(tmp_path: Path) -> None:
    clip = surround_tone(tmp_path / "surround.m4a", seconds=2.0, rate=44100, hz=440)
    spec = SourceSpec("s", str(clip), audio_chunk_s=0.5, audio_channels=6)
    _, audio = split(list(open_source(spec)))
    assert all(a.samples.shape[1:] == (6,) and a.sample_rate == 16000 for a in audio)
    samples = np.concatenate([a.samples for a in audio])
    energy = (samples[4000:20000] ** 2).mean(axis=0)
    # The tone is on front left and right only (FFmpeg's 5.1 order: FL FR FC LFE BL BR).
    assert energy[0] > 0.05 and energy[1] > 0.05
    assert energy[2:].max() < 1e-4
    assert sum(a.duration for a in audio) == pytest.approx(2.0, rel=0.02)
