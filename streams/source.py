"""One session of a source: open its container(s), demux, decode, place frames on the
media timeline and hand them to the emitter. Reconnecting is `streams.live`'s job."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import av
import av.container

from streams.decode import SourceError, configure_video, open_container
from streams.emit import Emitter
from streams.relay import Relay, can_relay
from streams.timeline import MediaClock
from streams.types import MediaItem, SourceSpec, SourceStats

log = logging.getLogger("streams")
__all__ = ["Source", "SourceError", "open_source"]


def open_source(spec: SourceSpec, stats: SourceStats | None = None) -> Iterator[MediaItem]:
    """Open the source and yield its items until it ends (see `Source`)."""
    with Source(spec, stats) as source:
        yield from source.items()
        yield from source.emitter.flush()


@dataclass
class _Feed:
    """One opened container and the streams of it we decode."""

    group: str  # "main", or "audio" for a separate audio URL
    url: str
    container: av.container.InputContainer
    video: av.VideoStream | None
    audio: av.AudioStream | None
    origin: float  # source seconds of media time 0 in this container
    relay: Relay | None = None  # the system ffmpeg feeding it, for protocols PyAV lacks


class Source:
    """One session: `open()` it, learn which modalities it has, then iterate `items()`.

    Raises SourceError when the source cannot be opened, has nothing to analyse, or
    fails while reading. A packet that fails to decode, or that the demuxer flags as
    corrupt, is counted in `stats` and skipped. Pass the clock and emitter of the stream
    to continue its timeline from an earlier session.
    """

    def __init__(
        self,
        spec: SourceSpec,
        stats: SourceStats | None = None,
        clock: MediaClock | None = None,
        emitter: Emitter | None = None,
    ) -> None:
        self.spec = spec
        self.stats = stats if stats is not None else SourceStats()
        self.clock = clock if clock is not None else MediaClock()
        self.emitter = emitter if emitter is not None else Emitter(spec, self.stats)
        self._feeds: list[_Feed] = []
        self._jumps = (self.clock.stats.jumps, self.clock.stats.wraps)

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def has_video(self) -> bool:
        return any(f.video is not None for f in self._feeds)

    @property
    def has_audio(self) -> bool:
        return any(f.audio is not None for f in self._feeds)

    def open(self, last_media: float | None = None) -> None:
        """Open the container(s). With `last_media` (the monotonic time of the previous
        session's last item), the session's media continues after the last by the wall
        time that passed until the source opened again: the outage, the open included."""
        spec = self.spec
        try:
            if spec.audio_url is None:
                self._feeds.append(
                    self._open("main", spec.url, spec.format, spec.video, spec.audio)
                )
            else:
                if spec.video:
                    self._feeds.append(self._open("main", spec.url, spec.format, True, False))
                if spec.audio:
                    self._feeds.append(
                        self._open("audio", spec.audio_url, spec.audio_format, False, True)
                    )
        except SourceError:
            self.close()
            raise
        if not (self.has_video or self.has_audio):
            self.close()
            raise SourceError(
                f"stream {spec.stream_id!r} ({spec.url}): no {_wanted(spec)} stream in the source"
            )
        gap_s = 0.0 if last_media is None else time.monotonic() - last_media
        self.clock.start_session(gap_s)
        for feed in self._feeds:
            self.clock.set_origin(feed.group, feed.origin)
        self.emitter.restart_pacing()

    def items(self) -> Iterator[MediaItem]:
        """Decode the session to its end. The emitter's partial audio is not flushed:
        the next session of a live stream continues it."""
        if not self._feeds:
            self.open()
        for feed, packet in _merged(self._feeds, self._read_error):
            if packet.is_corrupt:
                self.stats.corrupt_packets += 1
                continue
            try:
                frames = packet.decode()
            except (av.error.InvalidDataError, av.error.UndefinedError):
                self.stats.decode_errors += 1
                continue
            for frame in frames:
                yield from self._frame(feed, frame)

    def close(self) -> None:
        for feed in self._feeds:
            feed.container.close()
            if feed.relay is not None:
                feed.relay.close()
        self._feeds = []

    def _container(
        self, url: str, fmt: str | None
    ) -> tuple[av.container.InputContainer, Relay | None]:
        try:
            return open_container(self.spec, url, fmt, self.spec.hwaccel != "none"), None
        except SourceError as exc:
            if not (isinstance(exc.__cause__, av.ProtocolNotFoundError) and can_relay(url)):
                raise
        relay = Relay(self.spec, url)
        return relay.container, relay

    def _open(self, group: str, url: str, fmt: str | None, video: bool, audio: bool) -> _Feed:
        container, relay = self._container(url, fmt)
        vstream = container.streams.video[0] if video and container.streams.video else None
        astream = container.streams.audio[0] if audio and container.streams.audio else None
        if vstream is not None:
            configure_video(self.spec, vstream)
        start = (container.start_time or 0) / 1_000_000
        offset = self.spec.start_offset_s
        if offset > 0:
            try:
                container.seek(round((start + offset) * 1_000_000))
            except av.FFmpegError as exc:
                log.warning("stream %r (%s): cannot seek: %s", self.spec.stream_id, url, exc)
        return _Feed(group, url, container, vstream, astream, start + offset, relay)

    def _frame(self, feed: _Feed, frame: object) -> Iterator[MediaItem]:
        if not isinstance(frame, av.VideoFrame | av.AudioFrame):
            return
        source_s = frame.time
        if source_s is None:
            self.stats.decode_errors += 1
            return
        if source_s < feed.origin - 1e-6 and self.spec.start_offset_s > 0:
            return  # decoded from the keyframe before the start offset
        if isinstance(frame, av.VideoFrame):
            step = (
                float(frame.duration * frame.time_base)
                if frame.duration and frame.time_base
                else 0.0
            )
            t = self.clock.media_time(feed.group, "video", source_s, step)
        else:
            t = self.clock.media_time(
                feed.group, "audio", source_s, frame.samples / frame.sample_rate
            )
        self._note_jumps()
        realtime = feed.container.start_time_realtime
        if realtime is not None:  # RTSP with RTCP sender reports: the sender's clock
            self.emitter.sender_offset = realtime / 1_000_000 + source_s - t
        if isinstance(frame, av.VideoFrame):
            yield from self.emitter.video(frame, t)
        else:
            yield from self.emitter.audio(frame, t)

    def _note_jumps(self) -> None:
        clock = self.clock.stats
        if (clock.jumps, clock.wraps) == self._jumps:
            return
        self._jumps = (clock.jumps, clock.wraps)
        self.stats.ts_jumps, self.stats.ts_wraps = clock.jumps, clock.wraps
        log.warning(
            "stream %r: timestamp discontinuity (%s); media time carries on at %.3f s",
            self.spec.stream_id,
            self.clock.last_jump,
            self.clock.end,
        )

    def _read_error(self, feed: _Feed, exc: Exception) -> SourceError:
        return SourceError(f"stream {self.spec.stream_id!r} ({feed.url}): read failed: {exc}")


def _merged(
    feeds: list[_Feed], error: Callable[[_Feed, Exception], SourceError]
) -> Iterator[tuple[_Feed, av.Packet[Any]]]:
    """Packets of all feeds, the one furthest behind in its own time first."""
    iters = {
        id(f): f.container.demux([s for s in (f.video, f.audio) if s is not None]) for f in feeds
    }
    pending: dict[int, tuple[float, _Feed, av.Packet[Any]]] = {}

    def pull(feed: _Feed) -> None:
        try:
            for packet in iters[id(feed)]:
                # A packet without a time (the decoder-draining packet at the end) goes first.
                t = (
                    -1e18
                    if packet.pts is None
                    else float(packet.pts * packet.time_base) - feed.origin
                )
                pending[id(feed)] = (t, feed, packet)
                return
        except (av.FFmpegError, OSError) as exc:
            raise error(feed, exc) from exc

    for feed in feeds:
        pull(feed)
    while pending:
        key = min(pending, key=lambda k: pending[k][0])
        _, feed, packet = pending.pop(key)
        yield feed, packet
        pull(feed)


def _wanted(spec: SourceSpec) -> str:
    return " or ".join(k for k, on in (("video", spec.video), ("audio", spec.audio)) if on)
