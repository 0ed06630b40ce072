"""SRT: PyAV's bundled FFmpeg has no libsrt, so the system's ffmpeg relays it (remux only)."""

from __future__ import annotations

import itertools
import socket
import subprocess
import time
from pathlib import Path

import pytest

from streams import AudioChunk, SourceError, SourceSpec, VideoFrame, open_source
from streams.relay import system_protocols

pytestmark = pytest.mark.skipif(
    "srt" not in system_protocols(), reason="the system's ffmpeg has no SRT (scripts/system-deps)"
)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def srt_sender(tmp_path: Path):
    clip = tmp_path / "clip.ts"
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-f",
            "mpegts",
            str(clip),
        ],
        check=True,
        timeout=60,
    )
    port = free_udp_port()
    sender = subprocess.Popen(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            str(clip),
            "-c",
            "copy",
            "-f",
            "mpegts",
            f"srt://127.0.0.1:{port}?mode=listener",
        ],
    )
    time.sleep(0.5)
    yield f"srt://127.0.0.1:{port}?mode=caller"
    sender.kill()
    sender.wait()


@pytest.mark.slow
def test_srt_source_decodes_through_the_relay(srt_sender: str) -> None:
    spec = SourceSpec("cam", srt_sender, fps=5, width=160, height=120)
    video, audio = [], []
    for item in open_source(spec):
        (video if isinstance(item, VideoFrame) else audio).append(item)
        if len(video) >= 8 and audio:
            break
    assert [v.seq for v in video] == list(range(len(video)))
    assert all(b.pts > a.pts for a, b in itertools.pairwise(video))
    assert video[0].image.shape == (120, 160, 3)
    assert isinstance(audio[0], AudioChunk) and audio[0].sample_rate == 16000


@pytest.mark.slow
def test_srt_with_nobody_listening_fails_within_the_open_timeout() -> None:
    url = f"srt://127.0.0.1:{free_udp_port()}?mode=caller"
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"stream 'cam' \(srt://.*\): cannot open through ffmpeg"):
        list(open_source(SourceSpec("cam", url, open_timeout_s=2, read_timeout_s=2)))
    assert time.monotonic() - started < 10
