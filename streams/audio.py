"""Audio to the worker format: float32 at the worker rate (mono by default), in
fixed-length chunks."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import av
import numpy as np

from streams.types import AudioChunk, SourceStats

log = logging.getLogger("streams")
# Audio arriving this far from where the samples so far end starts a new run of chunks
# at its own time (a reconnect, a gap), rather than sliding the whole timeline.
RESYNC_S = 0.25
# FFmpeg's standard layout for each channel count the workers may ask for.
LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


class AudioChunker:
    """Resamples decoded audio frames and cuts them into chunks of `chunk_s` seconds.

    Chunk times come from the sample count since the run's first frame, so chunks tile
    the timeline exactly; a gap or jump in the frames' media time starts a new run. The
    resampler is FFmpeg's (swresample), rebuilt when the input format or rate changes.
    """

    def __init__(
        self,
        stream_id: str,
        rate: int,
        chunk_s: float,
        stats: SourceStats | None = None,
        channels: int = 1,
    ) -> None:
        self.stream_id = stream_id
        self.rate = rate
        self.channels = channels
        self.layout = LAYOUTS[channels]
        self.chunk_samples = max(1, round(rate * chunk_s))
        self.stats = stats if stats is not None else SourceStats()
        self.sender_offset: float | None = None  # sender wall clock - media time
        self._resampler = av.AudioResampler(format="flt", layout=self.layout, rate=rate)
        self._input: tuple[str, str, int] | None = None
        self._buffer = np.empty((self.chunk_samples, channels), dtype=np.float32)
        self._filled = 0
        self._origin: float | None = None
        self._emitted_samples = 0
        self._seq = 0

    def push(self, frame: av.AudioFrame, media_time: float) -> Iterator[AudioChunk]:
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self._input is not None and shape != self._input:
            log.info("stream %r: audio format changed %s -> %s", self.stream_id, self._input, shape)
            self.stats.format_changes += 1
            yield from self._drain_resampler()
        self._input = shape
        if self._origin is None:
            self._origin = media_time
        elif abs(media_time - self._expected()) > RESYNC_S:
            yield from self._drain_resampler()
            if self._filled:
                yield self._emit(self._filled)
            self._origin, self._emitted_samples = media_time, 0
        for out in self._resampler.resample(frame):
            yield from self._append(self._samples(out))

    def flush(self) -> Iterator[AudioChunk]:
        yield from self._drain_resampler()
        if self._filled:
            yield self._emit(self._filled)

    def _expected(self) -> float:
        assert self._origin is not None
        return self._origin + (self._emitted_samples + self._filled) / self.rate

    def _drain_resampler(self) -> Iterator[AudioChunk]:
        """Take what the resampler holds; a flushed resampler is done, so start a new one."""
        for out in self._resampler.resample(None):
            yield from self._append(self._samples(out))
        self._resampler = av.AudioResampler(format="flt", layout=self.layout, rate=self.rate)

    def _samples(self, frame: av.AudioFrame) -> np.ndarray:
        """Packed float32 samples as (n, channels)."""
        return frame.to_ndarray().reshape(-1, self.channels)

    def _append(self, samples: np.ndarray) -> Iterator[AudioChunk]:
        pos = 0
        while pos < len(samples):
            take = min(len(samples) - pos, self.chunk_samples - self._filled)
            self._buffer[self._filled : self._filled + take] = samples[pos : pos + take]
            self._filled += take
            pos += take
            if self._filled == self.chunk_samples:
                yield self._emit(self.chunk_samples)

    def _emit(self, n: int) -> AudioChunk:
        assert self._origin is not None
        pts = self._origin + self._emitted_samples / self.rate
        chunk = AudioChunk(
            stream_id=self.stream_id,
            seq=self._seq,
            pts=pts,
            capture_wall=time.time(),
            sample_rate=self.rate,
            # (n,) mono, else (n, channels) interleaved
            samples=self._buffer[:n, 0].copy() if self.channels == 1 else self._buffer[:n].copy(),
            sender_wall=None if self.sender_offset is None else pts + self.sender_offset,
        )
        self._seq += 1
        self._emitted_samples += n
        self._filled = 0
        return chunk
