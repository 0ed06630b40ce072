"""Open containers and set up their decoders: threads, skipped frames, hardware decode."""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from fractions import Fraction

import av
import av.container
from av.codec.hwaccel import HWAccel, hwdevices_available

from streams.types import SourceSpec

log = logging.getLogger("streams")
# Skip non-reference frames only when the analysis rate is at most this share of the
# source rate: with B-frames every other or third frame is one, and the sampler must
# still find a frame near every slot.
SKIP_NONREF_MAX_SHARE = 1 / 3


class SourceError(Exception):
    """A source that cannot be opened or read. The message names the stream and its URL."""


def open_container(
    spec: SourceSpec, url: str, fmt: str | None, hwaccel: bool
) -> av.container.InputContainer:
    """Open `url` with the stream's FFmpeg options and its open/read timeouts."""
    accel = _hwaccel(spec) if hwaccel else None
    started = time.monotonic()
    try:
        return av.open(
            url,
            format=fmt,
            options=ffmpeg_options(spec),
            timeout=(spec.open_timeout_s, spec.read_timeout_s),
            hwaccel=accel,
        )
    except (av.FFmpegError, OSError) as exc:
        waited = time.monotonic() - started
        if _timed_out(spec, exc, waited):
            # FFmpeg words its own timeout as "Immediate exit requested" (http) or
            # "Invalid data found" (rtsp): say what happened instead.
            raise SourceError(
                f"stream {spec.stream_id!r} ({url}): cannot open: timed out after "
                f"{waited:.1f} s {_waiting_for(spec)} (open_timeout_s = {spec.open_timeout_s:g})"
            ) from exc
        if accel is not None:
            log.warning(
                "stream %r (%s): hardware decode failed to open (%s): software",
                spec.stream_id,
                url,
                exc,
            )
            return open_container(spec, url, fmt, hwaccel=False)
        raise SourceError(f"stream {spec.stream_id!r} ({url}): cannot open: {exc}") from exc


def ffmpeg_options(spec: SourceSpec) -> dict[str, str]:
    """The stream's FFmpeg options, with the defaults FFmpeg lacks. RTSP listen mode
    waits `listen_timeout` seconds for a sender; FFmpeg's default (-1: forever) overflows
    in its TCP layer and fails every open at once ("Numerical result out of range"), so
    it is derived from open_timeout_s (whole seconds, at least 1)."""
    options = dict(spec.options)
    if _listens(spec) and "listen_timeout" not in options:
        options["listen_timeout"] = str(max(1, math.ceil(spec.open_timeout_s)))
    return options


def _listens(spec: SourceSpec) -> bool:
    """Whether rtsp_flags sets `listen` (FFmpeg flags: "listen", "+listen", "a+listen")."""
    flags = re.findall(r"([+-]?)(\w+)", spec.options.get("rtsp_flags", ""))
    return any(name == "listen" and sign != "-" for sign, name in flags)


def _timed_out(spec: SourceSpec, exc: BaseException, waited_s: float) -> bool:
    """Whether an open failed because its time ran out (PyAV's interrupt callback makes
    FFmpeg exit; some demuxers then report invalid data instead)."""
    return isinstance(exc, av.ExitError) or waited_s >= spec.open_timeout_s * 0.95


def _waiting_for(spec: SourceSpec) -> str:
    return "with no sender connecting" if _listens(spec) else "with no answer from the source"


def _hwaccel(spec: SourceSpec) -> HWAccel | None:
    if spec.hwaccel != "cuda":
        return None
    problem = _cuda_problem()
    if problem:
        log.warning(
            "stream %r: hwaccel = cuda but no CUDA device is available (%s): software decode",
            spec.stream_id,
            problem,
        )
        return None
    return HWAccel("cuda", allow_software_fallback=True)


@functools.cache
def _cuda_problem() -> str:
    """Why a CUDA decoder cannot be set up here, or "" if it can (probed once)."""
    if "cuda" not in hwdevices_available():
        return "FFmpeg has no CUDA support"
    try:
        HWAccel("cuda").create(av.Codec("h264", "r"))
    except (av.FFmpegError, OSError) as exc:
        return str(exc)
    return ""


def auto_decode_threads(video_streams: int, cores: int) -> int:
    """Decoder threads per stream when the config says "auto": the cores shared out over
    the video streams, at least one. With fewer streams than cores a high-resolution
    stream would otherwise leave cores idle; with more, threads per stream only cost."""
    return max(1, cores // max(1, video_streams))


def configure_video(spec: SourceSpec, stream: av.VideoStream) -> None:
    """Decoder threads, and skipping frames the analysis rate cannot need."""
    ctx = stream.codec_context
    # One single-threaded decoder per stream process: parallelism comes from streams
    # (PERF-NOTES: frame threading costs more CPU per frame and adds latency).
    ctx.thread_count = spec.decode_threads
    if spec.decode_threads != 1:
        ctx.thread_type = "SLICE" if spec.slice_threads else "AUTO"
    rate = _rate(stream)
    if spec.skip_nonref and rate is not None and spec.fps <= rate * SKIP_NONREF_MAX_SHARE:
        ctx.skip_frame = "NONREF"


def _rate(stream: av.VideoStream) -> float | None:
    rate: Fraction | None = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else None
