"""Audio to the worker format: mono float32 at the worker rate, in fixed-length chunks."""

from __future__ import annotations

import time
from collections.abc import Iterator

import av
import numpy as np

from streams.types import AudioChunk


class AudioChunker:
    """Resamples decoded audio frames and cuts them into chunks of `chunk_s` seconds.

    Chunk times come from the sample count since the first audio frame, so chunks tile
    the timeline exactly; the resampler is FFmpeg's (swresample), reused for the stream.
    """

    def __init__(self, stream_id: str, rate: int, chunk_s: float) -> None:
        self.stream_id = stream_id
        self.rate = rate
        self.chunk_samples = max(1, round(rate * chunk_s))
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        self._buffer = np.empty(self.chunk_samples * 4, dtype=np.float32)
        self._filled = 0
        self._origin: float | None = None
        self._emitted_samples = 0
        self._seq = 0

    def push(self, frame: av.AudioFrame, media_time: float) -> Iterator[AudioChunk]:
        if self._origin is None:
            self._origin = media_time
        for out in self._resampler.resample(frame):
            yield from self._append(out.to_ndarray().reshape(-1))

    def flush(self) -> Iterator[AudioChunk]:
        for out in self._resampler.resample(None):
            yield from self._append(out.to_ndarray().reshape(-1))
        if self._filled:
            yield self._emit(self._filled)

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
            samples=self._buffer[:n].copy(),
        )
        self._seq += 1
        self._emitted_samples += n
        self._filled = 0
        return chunk
