"""Typed records of the results bus, shared by tandemd (publisher) and subscribers.

The JSON Schemas in docs/schema/ for these records are generated from these types
(`python -m daemon.publishing.schemas`); a test checks that the committed files match.
Imports nothing but msgspec: a subscriber needs neither torch nor OpenCV.
"""

from __future__ import annotations

import functools
import operator
import time
import types
from typing import Annotated, Any, Literal, Protocol, TypeVar, Union, get_args, get_origin

import msgspec

DETECTIONS_SCHEMA: Literal[1] = 1
Modality = Literal["video", "audio"]


class _Result(Protocol):
    """What a worker's answer carries (daemon.wire.protocol.Result); not imported here."""

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


StreamId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MediaTime = Annotated[float, msgspec.Meta(ge=0)]
Count = Annotated[int, msgspec.Meta(ge=0)]
BoxList = Annotated[list[float], msgspec.Meta(min_length=4, max_length=4)]


class _Record(msgspec.Struct, kw_only=True, frozen=True):
    """Every field is always sent (defaults included) except those defaulting to UNSET,
    which are left out when they do not apply.

    Decoding ignores the fields a type does not declare: a newer tandemd may add optional
    fields, and a subscriber of this version keeps receiving its records, the fields it
    knows validated and typed (docs/results.md, Compatibility). The types are lenient and
    strict variants derived from them (strict(), below), not the reverse, because the
    lenient ones are what is seen outside tandemd: subscribers get these very classes and
    docs/schema/ is generated from them; only the publisher's check needs strict ones."""


class Detections(_Record, kw_only=True, frozen=True):
    """`detections.<stream>`: every analyzer's full outputs for one video frame or audio
    chunk, as the worker returned them (boxes, labels, scores, text, `gated`, ...)."""

    schema: Literal[1] = DETECTIONS_SCHEMA
    type: Literal["detections"] = "detections"
    stream: StreamId
    modality: Modality
    seq: Count  # the item's number in its stream and modality
    pts: MediaTime  # media seconds: the frame's time, the chunk's start
    end: MediaTime  # media seconds: the next frame's time, the chunk's end
    wall: float  # capture wall time (Unix seconds)
    infer_s: float  # the worker's time on it
    outputs: dict[str, dict[str, Any]]  # analyzer -> its outputs
    errors: dict[str, str]  # analyzer -> error, for analyzers that failed on this item
    published_at: float


class TrackSeen(_Record, kw_only=True, frozen=True):
    """A tracked object seen in a fused window (its last sighting there)."""

    id: Annotated[int, msgspec.Meta(ge=1)]  # unique within the stream, stable throughout
    analyzer: str  # the box analyzer it comes from (faces, persons, objects, motion)
    label: str
    box: BoxList  # [x0, y0, x1, y1] in 0..1 at its last sighting
    score: float  # at its last sighting (1.0 for analyzers without scores)
    best_score: float
    first_seen: MediaTime
    last_seen: MediaTime
    ended: bool  # the track ended in this window (lost, or the stream ended)


class SpeechSpan(_Record, kw_only=True, frozen=True):
    """Voice activity (vad) within a window, clipped to it."""

    start: MediaTime
    end: MediaTime
    open: bool  # still speaking at the window's end


class TranscriptSegment(_Record, kw_only=True, frozen=True):
    start: float
    end: float
    text: str


class Transcript(_Record, kw_only=True, frozen=True):
    text: str | None  # what the model produced with this window's audio
    segments: list[TranscriptSegment]  # with their own media times (may be earlier)


class LineCount(_Record, kw_only=True, frozen=True):
    """Crossings of a line in a window (`in`, `out`) and since the stream started."""

    in_: Count = msgspec.field(name="in")
    out: Count
    in_total: Count
    out_total: Count


class Window(_Record, kw_only=True, frozen=True):
    start: MediaTime
    end: MediaTime
    wall_start: float | None  # capture wall times of the oldest and newest answered item
    wall_end: float | None


class Stats(_Record, kw_only=True, frozen=True):
    min: float
    mean: float
    max: float


class ModalitySummary(_Record, kw_only=True, frozen=True):
    items: Count  # received
    results: Count  # answered
    lost: Count  # given up unanswered
    errors: dict[str, Annotated[int, msgspec.Meta(ge=1)]]  # per analyzer
    analyzers: dict[str, dict[str, Stats]]  # analyzer -> numeric output -> stats


class WindowEvent(_Record, kw_only=True, frozen=True):
    name: str
    id: str
    start: MediaTime
    end: float | None  # null while active


class AvSync(_Record, kw_only=True, frozen=True):
    offset_s: float  # audio later than video is positive
    confidence: Annotated[float, msgspec.Meta(ge=0, le=1)]
    pairs: Annotated[int, msgspec.Meta(ge=1)]


class SenderClock(_Record, kw_only=True, frozen=True):
    offset_s: float  # the sender's wall clock is media time + offset_s


class Fused(_Record, kw_only=True, frozen=True):
    """`fused.<stream>`: one window of media time, both modalities (docs/results.md)."""

    schema: Literal[3] = 3
    type: Literal["fused"] = "fused"
    stream: StreamId
    window: Window
    missing: list[Modality]
    partial: bool
    latency_s: float | None
    published_at: float
    sender_clock: SenderClock | msgspec.UnsetType = msgspec.UNSET
    events: list[WindowEvent]
    av_sync: AvSync | None
    video: ModalitySummary | None
    audio: ModalitySummary | None
    # With tracking (a box analyzer in the stream's `track`):
    tracks: list[TrackSeen] | msgspec.UnsetType = msgspec.UNSET
    zones: dict[str, dict[str, Count]] | msgspec.UnsetType = msgspec.UNSET
    lines: dict[str, LineCount] | msgspec.UnsetType = msgspec.UNSET
    # With `vad`, with `transcribe`:
    speech: list[SpeechSpan] | msgspec.UnsetType = msgspec.UNSET
    transcript: Transcript | msgspec.UnsetType = msgspec.UNSET


class Event(_Record, kw_only=True, frozen=True):
    """`event.<stream>`: a rule's event starts (`end` null) or ends; or an instant event of
    a track (`line_crossed`, `zone_enter`, `zone_leave`), with the track's fields."""

    schema: Literal[1] = 1
    type: Literal["event"] = "event"
    stream: StreamId
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    id: str  # <stream>/<name>/<n>: a start and its end share it
    edge: Literal["start", "end", "instant"]
    start: MediaTime
    end: float | None  # null on a start; = start for an instant event
    duration_s: Annotated[float, msgspec.Meta(ge=0)] | None
    ended_by: Literal["rule", "stream_end"] | None
    at: float | None  # publish time, Unix s
    snapshot: str | msgspec.UnsetType | None = msgspec.UNSET  # the JPEG's path, snapshots on
    track_id: Annotated[int, msgspec.Meta(ge=1)] | msgspec.UnsetType = msgspec.UNSET
    label: str | msgspec.UnsetType = msgspec.UNSET
    analyzer: str | msgspec.UnsetType = msgspec.UNSET
    box: BoxList | msgspec.UnsetType = msgspec.UNSET
    line: str | msgspec.UnsetType = msgspec.UNSET
    direction: Literal["in", "out"] | msgspec.UnsetType = msgspec.UNSET
    zone: str | msgspec.UnsetType = msgspec.UNSET
    dwell_s: Annotated[float, msgspec.Meta(ge=0)] | msgspec.UnsetType = msgspec.UNSET


class Status(_Record, kw_only=True, frozen=True, tag_field="type", tag="status"):
    """`status.<stream>`: the stream's health state changed."""

    schema: Literal[1] = 1
    stream: StreamId
    state: Literal["starting", "running", "stalled", "reconnecting", "failed", "stopped", "ended"]
    previous: str | msgspec.UnsetType = msgspec.UNSET
    detail: str | None  # why; a URL in it has its secrets replaced by ***
    at: float


class AnalysisRate(_Record, kw_only=True, frozen=True, tag_field="type", tag="analysis_rate"):
    """`status.<stream>`: the overload policy changed the stream's analysis fps."""

    schema: Literal[1] = 1
    stream: StreamId
    fps: Annotated[float, msgspec.Meta(gt=0)]
    configured_fps: Annotated[float, msgspec.Meta(gt=0)]
    degraded: bool
    detail: str
    at: float


class CorrectionWindow(_Record, kw_only=True, frozen=True):
    start: float
    end: float


class Correction(_Record, kw_only=True, frozen=True):
    """`correction.<stream>`: a result that arrived after its window was published."""

    schema: Literal[1] = 1
    type: Literal["correction"] = "correction"
    stream: StreamId
    window: CorrectionWindow
    modality: Modality
    seq: Count
    pts: float
    outputs: dict[str, dict[str, Any]]
    errors: dict[str, str]
    published_at: float


class Snapshot(_Record, kw_only=True, frozen=True):
    """`snapshot.<stream>`: [topic, this header, the JPEG bytes] for an event's start."""

    schema: Literal[1] = 1
    type: Literal["snapshot"] = "snapshot"
    stream: StreamId
    event_id: str
    event: str
    pts: MediaTime  # the frame's media time
    path: str | None  # where tandemd wrote it; null when it could not
    width: Annotated[int, msgspec.Meta(ge=1)]
    height: Annotated[int, msgspec.Meta(ge=1)]
    bytes: Annotated[int, msgspec.Meta(ge=1)]


RecordT = TypeVar("RecordT", bound=msgspec.Struct)


@functools.cache
def strict(cls: type[RecordT]) -> type[RecordT]:
    """`cls` refusing a field it does not declare, at every depth: a record tandemd builds
    with one is a bug there (a subscriber ignores it). A subclass of `cls` with the same
    fields in the same order; those holding a record type hold its strict variant."""
    fields = [
        (f.name, kind, _same_default(f))
        for f in msgspec.structs.fields(cls)
        if (kind := _strict_type(f.type)) is not f.type
    ]
    config = cls.__struct_config__
    return msgspec.defstruct(  # type: ignore[return-value]
        cls.__name__,
        fields,
        bases=(cls,),
        module=cls.__module__,
        kw_only=True,
        forbid_unknown_fields=True,
        tag=config.tag,
        tag_field=config.tag_field,
    )


def _same_default(field: msgspec.structs.FieldInfo) -> Any:
    if field.default_factory is not msgspec.NODEFAULT:
        return msgspec.field(default_factory=field.default_factory, name=field.encode_name)
    return msgspec.field(default=field.default, name=field.encode_name)  # NODEFAULT: required


def _strict_type(kind: Any) -> Any:
    """`kind` with every record type in it made strict; `kind` itself when it has none."""
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return strict(kind)
    args = get_args(kind)
    if get_origin(kind) is Annotated:
        inner = _strict_type(args[0])
        return kind if inner is args[0] else Annotated[(inner, *kind.__metadata__)]
    new = tuple(_strict_type(arg) for arg in args)
    if all(a is b for a, b in zip(new, args, strict=True)):
        return kind  # no record type inside (a Literal's values, str, float...)
    if get_origin(kind) in (Union, types.UnionType):
        return functools.reduce(operator.or_, new)
    return get_origin(kind)[new]  # list[...], dict[...]


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
