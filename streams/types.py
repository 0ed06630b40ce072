"""Frozen value types that leave the ingest stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Pace = Literal["realtime", "none"]
HwAccel = Literal["none", "cuda"]


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
    audio_channels: int = 1  # 1..8; more than one keeps the source's mix in that layout
    audio_chunk_s: float = 0.5
    pace: Pace = "none"
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    audio_url: str | None = None  # audio from a second source; video then from `url` only
    audio_format: str | None = None
    keep_aspect: bool = False  # fit inside width x height, aspect kept (sides even)
    live: bool = False  # reconnect on error or end, forever
    loop: bool = False  # a file starts over at its end (media time carries on)
    start_offset_s: float = 0.0  # seek here first; media time 0 is this point
    hwaccel: HwAccel = "none"  # "cuda": NVDEC when a GPU is present, else software
    decode_threads: int = 1  # 1: one single-threaded decoder per stream process; 0: auto
    slice_threads: bool = False  # decode_threads > 1 split frames (slices), never delay them
    skip_nonref: bool = True  # skip non-reference frames when the analysis fps allows
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    stall_timeout_s: float = 5.0  # no media this long: the stream is stalled


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One sampled, resized RGB frame. `pts` is media seconds from the stream's first frame."""

    stream_id: str
    seq: int
    pts: float
    duration: float
    capture_wall: float
    image: npt.NDArray[np.uint8]  # H x W x 3, RGB, C-contiguous
    sender_wall: float | None = None  # the sender's wall clock (RTCP), when the source has it


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A run of float32 samples at the worker rate, starting at media time `pts`: mono
    (n,), or (n, channels) interleaved when the stream asks for more channels."""

    stream_id: str
    seq: int
    pts: float
    capture_wall: float
    sample_rate: int
    samples: npt.NDArray[np.float32]  # shape (n,) or (n, channels)
    sender_wall: float | None = None  # the sender's wall clock (RTCP), when the source has it

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


# What leaves the ingest stage: one sampled video frame or one audio chunk.
MediaItem = VideoFrame | AudioChunk


@dataclass(slots=True)
class SourceStats:
    """Cumulative counters of one source, read by whoever runs it."""

    video_frames_decoded: int = 0
    video_frames_sampled: int = 0
    audio_frames_decoded: int = 0
    audio_chunks: int = 0
    decode_errors: int = 0  # packets or frames that failed to decode, skipped
    corrupt_packets: int = 0  # packets the demuxer flagged corrupt, skipped
    reconnects: int = 0  # a live source reopened after an error or its end
    ts_jumps: int = 0  # timestamp discontinuities repaired (restarts, jumps)
    ts_wraps: int = 0  # MPEG-TS 33-bit wraparounds unwrapped
    format_changes: int = 0  # mid-stream resolution or audio format changes
