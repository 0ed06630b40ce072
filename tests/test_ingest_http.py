"""HTTP sources: a real file served over HTTP, and a server that accepts and never sends."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from streams import AudioChunk, SourceError, SourceSpec, SourceStats, VideoFrame, open_source
from tests.conftest import accepts_tcp, free_port, wait_until
from tests.support.ingest_peer import need
from tests.support.media import encode_clip

SILENT_SERVER = """
import socket, sys, time
srv = socket.create_server(("127.0.0.1", int(sys.argv[1])))
held = []
while True:
    conn, _ = srv.accept()
    held.append(conn)  # accept, read nothing, send nothing, close nothing
"""


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    quiet = type("Quiet", (handler.func,), {"log_message": lambda *a: None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(quiet, **handler.keywords))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SILENT_SERVER, str(port)])
    assert wait_until(lambda: accepts_tcp(port), 15), "the silent server never listened"
    yield port
    proc.kill()
    proc.wait()


def test_http_progressive_file_decodes_like_the_file(http_dir: tuple[Path, int]) -> None:
    folder, port = http_dir
    encode_clip(folder / "clip.mp4", seconds=2.0)
    stats = SourceStats()
    items = list(open_source(SourceSpec("web", f"http://127.0.0.1:{port}/clip.mp4", fps=5), stats))
    video = [i for i in items if isinstance(i, VideoFrame)]
    audio = [i for i in items if isinstance(i, AudioChunk)]
    assert stats.video_frames_decoded == 60 and len(video) == 10
    assert sum(len(a.samples) for a in audio) == pytest.approx(32000, rel=0.02)


def test_http_missing_file_fails_naming_stream_and_url(http_dir: tuple[Path, int]) -> None:
    url = f"http://127.0.0.1:{http_dir[1]}/nope.mp4"
    with pytest.raises(SourceError, match=rf"stream 'web' \({url}\): cannot open: .*404"):
        list(open_source(SourceSpec("web", url)))


def test_an_open_timeout_says_it_timed_out_and_after_how_long(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}/live.ts"
    with pytest.raises(SourceError) as err:
        list(open_source(SourceSpec("mute", url, open_timeout_s=1.5)))
    assert str(err.value) == (
        f"stream 'mute' ({url}): cannot open: timed out after 1.5 s with no answer from "
        "the source (open_timeout_s = 1.5)"
    )  # not FFmpeg's "Immediate exit requested"


@pytest.mark.slow
def test_silent_server_fails_the_open_within_the_default_timeout(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}/live.ts"
    spec = SourceSpec("mute", url)
    assert spec.open_timeout_s == 10.0
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"stream 'mute' .*cannot open"):
        list(open_source(spec))
    assert 9.0 < time.monotonic() - started < 14.0  # its timeout, not forever


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.slow
def test_100_silent_opens_leak_neither_threads_nor_fds(silent_port: int) -> None:
    spec = SourceSpec("mute", f"http://127.0.0.1:{silent_port}/x.ts", open_timeout_s=0.1)
    with pytest.raises(SourceError):  # warm up whatever FFmpeg sets up once per process
        list(open_source(spec))
    fds, threads = _fds(), _threads()
    for _ in range(100):
        with pytest.raises(SourceError, match="cannot open"):
            list(open_source(spec))
    assert (_fds(), _threads()) == (fds, threads)


def test_hls_playlist_over_http(http_dir: tuple[Path, int]) -> None:
    folder, port = http_dir
    clip = encode_clip(folder / "src.mp4", seconds=4.0)
    subprocess.run(
        [need("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(clip), "-c", "copy",
         "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", str(folder / "live.m3u8")],
        check=True,
    )  # fmt: skip
    stats = SourceStats()
    url = f"http://127.0.0.1:{port}/live.m3u8"
    items = list(open_source(SourceSpec("hls", url, fps=5, width=160, height=120), stats))
    video = [i for i in items if isinstance(i, VideoFrame)]
    assert stats.video_frames_decoded == 120 and len(video) == 20
    assert [round(v.pts, 1) for v in video] == [round(i * 0.2, 1) for i in range(20)]
    assert any(isinstance(i, AudioChunk) for i in items)
