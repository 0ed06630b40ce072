"""Ingest: open a source, demux and decode it with PyAV, sample and stamp it on one media timeline.

This package knows nothing of the daemon: it turns a `SourceSpec` into an iterator of
`VideoFrame` and `AudioChunk` items. Who sends them where is the daemon's business.
"""

from streams.source import Source, SourceError, open_source
from streams.types import AudioChunk, SourceSpec, SourceStats, VideoFrame

__all__ = [
    "AudioChunk",
    "Source",
    "SourceError",
    "SourceSpec",
    "SourceStats",
    "VideoFrame",
    "open_source",
]
