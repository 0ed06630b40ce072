"""Decoded frames to items: sampling, scaling (streams.scale), audio chunks, pacing."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator

import av

from streams.audio import AudioChunker
from streams.sampling import AnalysisRate, FpsSampler
from streams.scale import RgbScaler
from streams.types import AudioChunk, MediaItem, SourceSpec, SourceStats, VideoFrame

log = logging.getLogger("streams")


class Emitter:
    """Turns decoded frames, already placed on the media timeline, into items.

    Lives as long as the stream (across reconnects), so sequence numbers, the sampling
    grid and the audio chunking carry on.
    """

    def __init__(
        self, spec: SourceSpec, stats: SourceStats, rate: AnalysisRate | None = None
    ) -> None:
        self.spec = spec
        self.stats = stats
        self.sampler = FpsSampler(rate if rate is not None else spec.fps)
        self.scaler = RgbScaler()
        self.chunker = AudioChunker(
            spec.stream_id, spec.audio_rate, spec.audio_chunk_s, stats, spec.audio_channels
        )
        self.video_seq = 0
        self.sender_offset: float | None = None  # sender wall clock - media time (RTCP)
        self._wall_origin: float | None = None
        self._input: tuple[int, int, str] | None = None
        self._size = (spec.width, spec.height)

    def video(self, frame: av.VideoFrame, t: float) -> Iterator[MediaItem]:
        self.stats.video_frames_decoded += 1
        if self.sampler.keep(t):  # frames the analysis rate skips are never converted
            yield self._paced(self._video_item(frame, t))

    def audio(self, frame: av.AudioFrame, t: float) -> Iterator[MediaItem]:
        self.stats.audio_frames_decoded += 1
        self.chunker.sender_offset = self.sender_offset
        for chunk in self.chunker.push(frame, t):
            self.stats.audio_chunks += 1
            yield self._paced(chunk)

    def flush(self) -> Iterator[MediaItem]:
        for chunk in self.chunker.flush():
            self.stats.audio_chunks += 1
            yield self._paced(chunk)

    def restart_pacing(self) -> None:
        """A new session: pace from its first item again."""
        self._wall_origin = None

    def _video_item(self, frame: av.VideoFrame, t: float) -> VideoFrame:
        width, height = self._output_size(frame)
        item = VideoFrame(
            stream_id=self.spec.stream_id,
            seq=self.video_seq,
            pts=t,
            duration=self.sampler.interval,
            capture_wall=time.time(),
            image=self.scaler.rgb(frame, width, height),
            sender_wall=None if self.sender_offset is None else t + self.sender_offset,
        )
        self.video_seq += 1
        self.stats.video_frames_sampled += 1
        return item

    def _output_size(self, frame: av.VideoFrame) -> tuple[int, int]:
        shape = (frame.width, frame.height, frame.format.name)
        if shape == self._input:
            return self._size
        if self._input is not None:
            self.stats.format_changes += 1
            log.info("stream %r: video changed %s -> %s", self.spec.stream_id, self._input, shape)
        self._input = shape
        self._size = fit(frame.width, frame.height, self.spec)
        return self._size

    def _paced(self, item: MediaItem) -> MediaItem:
        """Realtime pacing: release an item when a live source would have it complete
        (a frame at its time, a chunk at its end), and stamp capture time then."""
        if self.spec.pace != "realtime":
            return item
        ready_at = item.pts + (item.duration if isinstance(item, AudioChunk) else 0.0)
        now = time.monotonic()
        if self._wall_origin is None:
            self._wall_origin = now - ready_at
        delay = self._wall_origin + ready_at - now
        if delay > 0:
            time.sleep(delay)
        return dataclasses.replace(item, capture_wall=time.time())


def fit(width: int, height: int, spec: SourceSpec) -> tuple[int, int]:
    """The output size: exactly the spec's, or the largest even size of the frame's
    aspect that fits inside it."""
    if not spec.keep_aspect:
        return spec.width, spec.height
    scale = min(spec.width / width, spec.height / height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
