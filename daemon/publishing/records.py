"""Typed records of the results bus, shared by tandemd (publisher) and subscribers.

The JSON Schemas in docs/schema/ for these records are generated from these types
(`python -m daemon.publishing.schemas`); a test checks that the committed files match.
Imports nothing but msgspec: a subscriber needs neither torch nor OpenCV.
"""

from __future__ import annotations

import time
from typing import Any, Literal, Protocol

import msgspec

DETECTIONS_SCHEMA: Literal[1] = 1
Modality = Literal["video", "audio"]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in 0..1 of the frame


class _Result(Protocol):
    """What a worker's answer carries (daemon.protocol.Result); not imported here."""

    @property
    def stream(self) -> str: ...
    @property
    def modality(self) -> Literal["video", "audio"]: ...
    @property
    def seq(self) -> int: ...
    @property
    def pts(self) -> float: ...
    @property
    def wall(self) -> float: ...
    @property
    def outputs(self) -> dict[str, dict[str, Any]]: ...
    @property
    def infer_s(self) -> float: ...
    @property
    def errors(self) -> dict[str, str]: ...


class Detections(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """`detections.<stream>`: every analyzer's full outputs for one video frame or audio
    chunk, as the worker returned them (boxes, labels, scores, text, `gated`, ...)."""

    schema: Literal[1] = DETECTIONS_SCHEMA
    type: Literal["detections"] = "detections"
    stream: str
    modality: Modality
    seq: int  # the item's number in its stream and modality
    pts: float  # media seconds: the frame's time, the chunk's start
    end: float  # media seconds: the next frame's time, the chunk's end
    wall: float  # capture wall time (Unix seconds)
    infer_s: float  # the worker's time on it
    outputs: dict[str, dict[str, Any]]  # analyzer -> its outputs
    errors: dict[str, str]  # analyzer -> error, for analyzers that failed on this item
    published_at: float


class TrackSeen(msgspec.Struct, kw_only=True, frozen=True):
    """A tracked object seen in a fused window (its last sighting there)."""

    id: int  # unique within the stream, stable from first to last sighting
    analyzer: str  # the box analyzer it comes from (faces, persons, objects, motion)
    label: str
    box: list[float]  # [x0, y0, x1, y1] in 0..1 at its last sighting
    score: float  # at its last sighting (1.0 for analyzers without scores)
    best_score: float
    first_seen: float  # media seconds
    last_seen: float
    ended: bool  # the track ended in this window (lost, or the stream ended)


class SpeechSpan(msgspec.Struct, kw_only=True, frozen=True):
    """Voice activity (vad) within a window, clipped to it."""

    start: float
    end: float
    open: bool  # still speaking at the window's end


class TranscriptSegment(msgspec.Struct, kw_only=True, frozen=True):
    start: float
    end: float
    text: str


class Transcript(msgspec.Struct, kw_only=True, frozen=True):
    text: str | None  # what the model produced with this window's audio
    segments: list[TranscriptSegment]  # with their own media times (may be earlier)


class LineCount(msgspec.Struct, kw_only=True, frozen=True):
    """Crossings of a line in a window (`in`, `out`) and since the stream started."""

    in_: int = msgspec.field(name="in")
    out: int
    in_total: int
    out_total: int


class SceneEvent(msgspec.Struct, kw_only=True, frozen=True):
    """`event.<stream>` with `edge` "instant": a track crossed a line (`line_crossed`),
    entered a zone (`zone_enter`) or left it (`zone_leave`, with `dwell_s`)."""

    schema: Literal[1] = 1
    type: Literal["event"] = "event"
    stream: str
    name: Literal["line_crossed", "zone_enter", "zone_leave"]
    id: str
    edge: Literal["instant"] = "instant"
    start: float  # media seconds; end = start
    end: float
    duration_s: float = 0.0
    ended_by: None = None
    at: float
    track_id: int
    label: str
    analyzer: str
    box: list[float]
    line: str | msgspec.UnsetType = msgspec.UNSET
    direction: Literal["in", "out"] | msgspec.UnsetType = msgspec.UNSET
    zone: str | msgspec.UnsetType = msgspec.UNSET
    dwell_s: float | msgspec.UnsetType = msgspec.UNSET


def detections_record(result: _Result, end: float) -> Detections:
    return Detections(
        stream=result.stream,
        modality=result.modality,
        seq=result.seq,
        pts=result.pts,
        end=round(end, 6),
        wall=result.wall,
        infer_s=result.infer_s,
        outputs=result.outputs,
        errors=result.errors,
        published_at=time.time(),
    )
