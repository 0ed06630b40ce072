"""Ingest: open a source, demux and decode it with PyAV, sample and stamp it on one media timeline.

This package knows nothing of the daemon: it turns a `SourceSpec` into an iterator of
`VideoFrame` and `AudioChunk` items (`open_source` for one session, `run_stream` for a
stream's whole life with reconnects), and keeps each stream's `Health` state machine.
Who sends them where is the daemon's business.
"""

from streams.decode import SourceError, auto_decode_threads
from streams.health import STATES, Health, IllegalTransitionError, State, Transition
from streams.live import Finished, Interrupted, Opened, run_stream
from streams.redact import redact
from streams.sampling import AnalysisRate
from streams.source import Source, open_source
from streams.types import AudioChunk, MediaItem, SourceSpec, SourceStats, VideoFrame

__all__ = [
    "STATES",
    "AnalysisRate",
    "AudioChunk",
    "Finished",
    "Health",
    "IllegalTransitionError",
    "Interrupted",
    "MediaItem",
    "Opened",
    "Source",
    "SourceError",
    "SourceSpec",
    "SourceStats",
    "State",
    "Transition",
    "VideoFrame",
    "auto_decode_threads",
    "open_source",
    "redact",
    "run_stream",
]
