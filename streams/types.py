"""Frozen value types that leave the ingest stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Pace = Literal["realtime", "none"]


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What to open and how to shape its output for the workers."""

    stream_id: str
    url: str
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    video: bool = True
    audio: bool = True
    fps: float = 5.0
    width: int = 640
    height: int = 360
    audio_rate: int = 16000
    audio_chunk_s: float = 0.5
    pace: Pace = "none"
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One sampled, resized RGB frame. `pts` is media seconds from the stream's first frame."""

    stream_id: str
    seq: int
    pts: float
    duration: float
    capture_wall: float
    image: npt.NDArray[np.uint8]  # H x W x 3, RGB, C-contiguous


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A run of mono float32 samples at the worker rate, starting at media time `pts`."""

    stream_id: str
    seq: int
    pts: float
    capture_wall: float
    sample_rate: int
    samples: npt.NDArray[np.float32]  # shape (n,)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(slots=True)
class SourceStats:
    """Cumulative counters of one source, read by whoever runs it."""

    video_frames_decoded: int = 0
    video_frames_sampled: int = 0
    audio_frames_decoded: int = 0
    audio_chunks: int = 0
    decode_errors: int = 0
