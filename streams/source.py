"""Open a source with PyAV and turn it into sampled, resized, time-stamped items."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import av
import av.container
from av.video.reformatter import VideoReformatter

from streams.audio import AudioChunker
from streams.sampling import FpsSampler
from streams.timeline import MediaClock
from streams.types import AudioChunk, SourceSpec, SourceStats, VideoFrame

Item = VideoFrame | AudioChunk


class SourceError(Exception):
    """A source that cannot be opened or read. The message names the stream and its URL."""


def open_source(spec: SourceSpec, stats: SourceStats | None = None) -> Iterator[Item]:
    """Open the source and yield its items until it ends (see `Source`)."""
    with Source(spec, stats) as source:
        yield from source.items()


class Source:
    """One source: `open()` it, learn which modalities it has, then iterate `items()`.

    Raises SourceError when the source cannot be opened or has nothing to analyse.
    A packet that fails to decode is counted in `stats.decode_errors` and skipped.
    """

    def __init__(self, spec: SourceSpec, stats: SourceStats | None = None) -> None:
        self.spec = spec
        self.stats = stats if stats is not None else SourceStats()
        self._container: av.container.InputContainer | None = None
        self._video: av.VideoStream | None = None
        self._audio: av.AudioStream | None = None

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def has_video(self) -> bool:
        return self._video is not None

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    def open(self) -> None:
        spec = self.spec
        container = _open(spec)
        video = container.streams.video[0] if spec.video and container.streams.video else None
        audio = container.streams.audio[0] if spec.audio and container.streams.audio else None
        if video is None and audio is None:
            container.close()
            raise SourceError(
                f"stream {spec.stream_id!r} ({spec.url}): no {_wanted(spec)} stream in the source"
            )
        if video is not None:
            # One single-threaded decoder per stream process: parallelism comes from streams.
            video.codec_context.thread_count = 1
        self._container, self._video, self._audio = container, video, audio

    def items(self) -> Iterator[Item]:
        if self._container is None:
            self.open()
        assert self._container is not None
        start = self._container.start_time
        clock = MediaClock(None if start is None else start / 1_000_000)
        emitter = _Emitter(self.spec, self.stats, clock)
        selected = [s for s in (self._video, self._audio) if s is not None]
        for packet in self._container.demux(selected):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                self.stats.decode_errors += 1
                continue
            for frame in frames:
                if isinstance(frame, av.VideoFrame | av.AudioFrame):
                    yield from emitter.emit(frame)
        yield from emitter.flush()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def _open(spec: SourceSpec) -> av.container.InputContainer:
    try:
        return av.open(
            spec.url,
            format=spec.format,
            options=dict(spec.options),
            timeout=(spec.open_timeout_s, spec.read_timeout_s),
        )
    except (av.FFmpegError, OSError) as exc:
        raise SourceError(f"stream {spec.stream_id!r} ({spec.url}): cannot open: {exc}") from exc


def _wanted(spec: SourceSpec) -> str:
    return " or ".join(k for k, on in (("video", spec.video), ("audio", spec.audio)) if on)


class _Emitter:
    """Turns decoded frames into items: sampling, scaling, chunking, pacing."""

    def __init__(self, spec: SourceSpec, stats: SourceStats, clock: MediaClock) -> None:
        self.spec = spec
        self.stats = stats
        self.clock = clock
        self.sampler = FpsSampler(spec.fps)
        self.reformatter = VideoReformatter()
        self.chunker = AudioChunker(spec.stream_id, spec.audio_rate, spec.audio_chunk_s)
        self.video_seq = 0
        self.wall_origin: float | None = None

    def emit(self, frame: av.VideoFrame | av.AudioFrame) -> Iterator[Item]:
        if frame.time is None:
            self.stats.decode_errors += 1
            return
        t = self.clock.media_time(frame.time)
        if isinstance(frame, av.VideoFrame):
            self.stats.video_frames_decoded += 1
            if self.sampler.keep(t):
                yield self._paced(self._video_item(frame, t))
        else:
            self.stats.audio_frames_decoded += 1
            for chunk in self.chunker.push(frame, t):
                self.stats.audio_chunks += 1
                yield self._paced(chunk)

    def flush(self) -> Iterator[Item]:
        for chunk in self.chunker.flush():
            self.stats.audio_chunks += 1
            yield self._paced(chunk)

    def _video_item(self, frame: av.VideoFrame, t: float) -> VideoFrame:
        # Scale and convert in FFmpeg's scaler, one reused context, one thread.
        scaled = self.reformatter.reformat(
            frame, width=self.spec.width, height=self.spec.height, format="rgb24", threads=1
        )
        item = VideoFrame(
            stream_id=self.spec.stream_id,
            seq=self.video_seq,
            pts=t,
            duration=self.sampler.interval,
            capture_wall=time.time(),
            image=scaled.to_ndarray(),  # type: ignore[arg-type]  # rgb24 is uint8
        )
        self.video_seq += 1
        self.stats.video_frames_sampled += 1
        return item

    def _paced(self, item: Item) -> Item:
        """Realtime pacing: release an item when a live source would have it complete
        (a frame at its time, a chunk at its end), and stamp capture time then."""
        if self.spec.pace != "realtime":
            return item
        ready_at = item.pts + (item.duration if isinstance(item, AudioChunk) else 0.0)
        now = time.monotonic()
        if self.wall_origin is None:
            self.wall_origin = now - ready_at
        delay = self.wall_origin + ready_at - now
        if delay > 0:
            time.sleep(delay)
        return dataclasses.replace(item, capture_wall=time.time())
