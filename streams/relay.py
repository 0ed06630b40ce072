"""Sources in protocols PyAV's bundled FFmpeg lacks (SRT): the system's ffmpeg reads
them and remuxes them, without re-encoding, to MPEG-TS on a pipe that PyAV demuxes.

The relay runs with the stream's read timeout (`-rw_timeout`); if it has delivered
nothing within the open timeout it is killed, so the open fails like any other.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import threading
from typing import IO
from urllib.parse import urlsplit

import av
import av.container

from streams.decode import SourceError
from streams.types import SourceSpec


@functools.cache
def system_protocols() -> frozenset[str]:
    """Input protocols of the system's ffmpeg (empty when there is none)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return frozenset()
    out = subprocess.run(
        [ffmpeg, "-hide_banner", "-protocols"], capture_output=True, text=True, timeout=30
    ).stdout
    inputs = out.split("Input:", 1)[-1].split("Output:", 1)[0]
    return frozenset(line.strip() for line in inputs.splitlines() if line.strip())


def can_relay(url: str) -> bool:
    return urlsplit(url).scheme in system_protocols()


class Relay:
    """A system ffmpeg copying `url` to a pipe, and the PyAV container reading the pipe."""

    def __init__(self, spec: SourceSpec, url: str) -> None:
        ffmpeg = shutil.which("ffmpeg")
        assert ffmpeg is not None  # can_relay() said so
        options = [part for key, value in spec.options.items() for part in (f"-{key}", value)]
        self.proc = subprocess.Popen(
            [
                ffmpeg,
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-rw_timeout",
                str(round(spec.read_timeout_s * 1_000_000)),
                *options,
                "-i",
                url,
                "-map",
                "0",
                "-c",
                "copy",
                "-f",
                "mpegts",
                "pipe:1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        stdout: IO[bytes] = self.proc.stdout  # type: ignore[assignment]
        timed_out = threading.Event()

        def give_up() -> None:
            timed_out.set()
            self.proc.kill()

        watchdog = threading.Timer(spec.open_timeout_s, give_up)
        watchdog.start()
        try:
            self.container: av.container.InputContainer = av.open(stdout, mode="r", format="mpegts")
        except (av.FFmpegError, OSError, ValueError) as exc:
            reason = self._stderr() or str(exc)
            if timed_out.is_set():
                reason = f"no media within the open timeout ({spec.open_timeout_s:g} s)"
            self.close()
            raise SourceError(
                f"stream {spec.stream_id!r} ({url}): cannot open through ffmpeg: {reason}"
            ) from exc
        finally:
            watchdog.cancel()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stderr is not None
        lines = self.proc.stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""
