"""The wire protocol between tandemd, its ingest processes and its workers.

Every message is multipart: `[header, payload...]`. The header is UTF-8 JSON with the
protocol version `v` and a message `type`; payloads are raw buffers (never pickled).
Everything read from a socket goes through `decode`, which validates the header and the
payload sizes before anything else looks at them. See docs/protocol.md.

Messages are msgspec Structs: every item and answer passes through here on both sides of
the worker link, and msgspec decodes, validates and encodes them several times faster
than pydantic did (bench/transport.py). Building one does not validate it: whatever comes
from a socket is validated by `decode`, the only way in.
"""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Annotated, Any, ClassVar, Literal, get_args

import msgspec
import numpy as np
from msgspec import Meta, field

from daemon.wire.vocabulary import Kind, Modality, StreamState

PROTOCOL_VERSION = 2
MAX_IMAGE_SIDE = 8192
MAX_AUDIO_SAMPLES = 192000 * 60
MAX_AUDIO_CHANNELS = 8

JsonValue = float | int | bool | str | None | list[Any] | dict[str, Any]
Outputs = dict[str, dict[str, JsonValue]]
StreamId = Annotated[str, Meta(max_length=64)]
Seq = Annotated[int, Meta(ge=0, le=2**63 - 1)]  # a signed 64-bit int, as in any consumer
Seconds = Annotated[float, Meta(ge=0)]
Skip = Annotated[list[str], Meta(max_length=64)]


class BaseMessage(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="type",
    # A field at its default is left out: workers of an older install know neither
    # `sender_wall` nor `skip`, and an empty `errors` says nothing.
    omit_defaults=True,
):
    """Subclasses say `frozen=True` again only for mypy, which reads it per class."""

    type: ClassVar[str]  # each message's tag, also on the wire
    v: int


class VideoItem(BaseMessage, tag="video", frozen=True):
    """A video frame for analysis: payload is H x W x 3 uint8 RGB."""

    type: ClassVar[Literal["video"]] = "video"
    stream: StreamId
    seq: Seq
    pts: Seconds
    duration: Seconds
    wall: float
    shape: tuple[int, int, int]
    dtype: Literal["uint8"] = "uint8"
    sender_wall: float | None = None  # the source's own wall clock (RTCP), when known
    skip: Skip = field(default_factory=list)  # on-demand analyzers off

    def payload_bytes(self) -> int:
        h, w, c = self.shape
        return h * w * c


class AudioItem(BaseMessage, tag="audio", frozen=True):
    """An audio chunk for analysis: payload is n float32 samples, mono (shape [n]) or
    interleaved channels (shape [n, channels])."""

    type: ClassVar[Literal["audio"]] = "audio"
    stream: StreamId
    seq: Seq
    pts: Seconds
    wall: float
    rate: Annotated[int, Meta(ge=1000, le=384000)]
    # [n] or [n, channels] (msgspec takes no union of two tuple shapes).
    shape: Annotated[tuple[int, ...], Meta(min_length=1, max_length=2)]
    dtype: Literal["float32"] = "float32"
    sender_wall: float | None = None  # the source's own wall clock (RTCP), when known
    skip: Skip = field(default_factory=list)  # on-demand analyzers off

    @property
    def duration(self) -> float:
        return self.shape[0] / self.rate

    @property
    def channels(self) -> int:
        return self.shape[1] if len(self.shape) == 2 else 1

    def payload_bytes(self) -> int:
        return self.shape[0] * self.channels * 4


class IngestHello(BaseMessage, tag="ingest_hello", frozen=True):
    """An ingest process opened its source: which modalities it will send."""

    type: ClassVar[Literal["ingest_hello"]] = "ingest_hello"
    stream: str
    pid: int
    video: bool
    audio: bool


class IngestStats(BaseMessage, tag="ingest_stats", frozen=True):
    """Cumulative counters of an ingest process since it started."""

    type: ClassVar[Literal["ingest_stats"]] = "ingest_stats"
    stream: str
    counters: dict[str, int]
    drops: dict[str, int]  # "modality:reason" -> count


class IngestState(BaseMessage, tag="ingest_state", frozen=True):
    """The stream's health state changed (streams/health.py). `video`/`audio` say what
    the source carries once it is `running`."""

    type: ClassVar[Literal["ingest_state"]] = "ingest_state"
    stream: str
    state: StreamState
    previous: StreamState
    reason: Annotated[str, Meta(max_length=4096)]
    at: float
    video: bool | None = None
    audio: bool | None = None


class IngestEnd(BaseMessage, tag="ingest_end", frozen=True):
    type: ClassVar[Literal["ingest_end"]] = "ingest_end"
    stream: str
    reason: Literal["eof", "error", "stopped"]
    error: str | None = None


class Credit(BaseMessage, tag="credit", frozen=True):
    """tandemd to a sender: you may send `n` more items."""

    type: ClassVar[Literal["credit"]] = "credit"
    n: Annotated[int, Meta(ge=0)]


class IngestControl(BaseMessage, tag="ingest_control", frozen=True):
    """tandemd to an ingest process: analyse at this fps from now on (overload policy)."""

    type: ClassVar[Literal["ingest_control"]] = "ingest_control"
    fps: Annotated[float, Meta(gt=0, le=120)]


class Stop(BaseMessage, tag="stop", frozen=True):
    type: ClassVar[Literal["stop"]] = "stop"


class Register(BaseMessage, tag="register", frozen=True):
    """A worker's first message: what it is and how many items it can hold."""

    type: ClassVar[Literal["register"]] = "register"
    kind: Kind
    capacity: Annotated[int, Meta(ge=1, le=4096)]
    analyzers: list[str]
    name: Annotated[str, Meta(max_length=128)]
    # The child tandemd started it as (its local workers: "worker-vision-0"), so tandemd
    # can kill and restart the process it declared dead; None for workers run elsewhere.
    child: Annotated[str, Meta(max_length=64)] | None = None


class Welcome(BaseMessage, tag="welcome", frozen=True):
    type: ClassVar[Literal["welcome"]] = "welcome"
    heartbeat_ms: int
    liveness: int


class Refuse(BaseMessage, tag="refuse", frozen=True):
    type: ClassVar[Literal["refuse"]] = "refuse"
    reason: str


class Heartbeat(BaseMessage, tag="heartbeat", frozen=True):
    type: ClassVar[Literal["heartbeat"]] = "heartbeat"


Count = Annotated[int, Meta(ge=0, le=2**63 - 1)]
MAX_BUCKETS = 64


class HistogramStats(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A histogram's cumulative state: `counts[i]` observations <= `le[i]` (finite upper
    bounds, increasing), `count` all of them (the +Inf bucket), `sum` their total."""

    le: Annotated[list[float], Meta(max_length=MAX_BUCKETS)]
    counts: Annotated[list[Count], Meta(max_length=MAX_BUCKETS)]
    count: Count
    sum: float


class AnalyzerStats(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One analyzer's figures in a worker since it started (docs/metrics.md, workers)."""

    inference: HistogramStats  # seconds per batch
    batch_size: HistogramStats  # items per forward
    errors: Count = 0
    oom_retries: Count = 0
    gated: Count = 0
    region_frames: Count = 0
    region_pixels_saved: Count = 0


class WorkerStats(BaseMessage, tag="worker_stats", frozen=True):
    """A registered worker's cumulative figures, sent with its heartbeats: tandemd
    exports them with a `worker` label, so a worker needs no metrics port of its own."""

    type: ClassVar[Literal["worker_stats"]] = "worker_stats"
    items: Count
    accelerator_memory_bytes: Count
    analyzers: Annotated[
        dict[Annotated[str, Meta(max_length=64)], AnalyzerStats], Meta(max_length=64)
    ]


class Result(BaseMessage, tag="result", frozen=True):
    """A worker's answer to one item: every analyzer's outputs, or the error."""

    type: ClassVar[Literal["result"]] = "result"
    stream: str
    modality: Modality
    seq: Seq
    pts: float
    wall: float
    outputs: Outputs
    infer_s: Seconds
    errors: dict[str, str] = field(default_factory=dict)


class Results(BaseMessage, tag="results", frozen=True):
    """A worker's answers to a batch of items, one message for the lot."""

    type: ClassVar[Literal["results"]] = "results"
    results: Annotated[list[Result], Meta(min_length=1, max_length=4096)]


Message = (
    VideoItem
    | AudioItem
    | IngestHello
    | IngestStats
    | IngestState
    | IngestEnd
    | Credit
    | IngestControl
    | Stop
    | Register
    | Welcome
    | Refuse
    | Heartbeat
    | WorkerStats
    | Result
    | Results
)
MESSAGE_TYPES: tuple[type[BaseMessage], ...] = get_args(Message)
Item = VideoItem | AudioItem
_DECODER = msgspec.json.Decoder(Message)


def _numpy_scalar(obj: Any) -> Any:
    """An analyzer's numpy scalar (np.float32, np.int64) as the Python number it holds."""
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not a JSON value")


_ENCODER = msgspec.json.Encoder(enc_hook=_numpy_scalar)


class ProtocolError(Exception):
    """A message that failed validation; `reason` is the metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def encode(msg: BaseMessage) -> bytes:
    """The header's JSON. TypeError when a field holds what JSON cannot (an analyzer's
    outputs, say): construction does not check."""
    return _ENCODER.encode(msg)


def encode_value(value: Any) -> bytes:
    """Any value as JSON, as `encode` would write it in a message."""
    return _ENCODER.encode(value)


def decode(frames: list[Any], max_bytes: int | None = None) -> tuple[Message, list[Any]]:
    """Validate `[header, payload...]` (bytes or zmq.Frame); return the message and payloads.
    A part over `max_bytes` is refused as `size` before anything is parsed."""
    if not frames:
        raise ProtocolError("malformed", "empty message")
    if max_bytes is not None:
        _check_part_sizes(frames, max_bytes)
    header = _as_bytes(frames[0])
    try:
        msg = _DECODER.decode(header)
    except msgspec.DecodeError as exc:
        # Another version's message may well not fit ours: say so rather than which field.
        _check_version(_peek_version(header))
        raise ProtocolError("malformed", str(exc)) from None
    except RecursionError:  # arrays or objects nested thousands deep, in `outputs` say
        raise ProtocolError("malformed", "header nested too deeply") from None
    _check_version(msg.v)  # one parse on the hot path: the version is checked after it
    if isinstance(msg, WorkerStats):
        _check_stats(msg)
    payloads = frames[1:]
    _check_payload(msg, payloads)
    return msg, payloads


def _check_part_sizes(frames: list[Any], max_bytes: int) -> None:
    for part in frames:
        if len(part) > max_bytes:
            raise ProtocolError(
                "size", f"a message part of {len(part)} bytes, over max_message_bytes {max_bytes}"
            )


def _check_version(version: object) -> None:
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            "version", f"protocol version {version}, this side speaks {PROTOCOL_VERSION}"
        )


def _peek_version(header: bytes) -> object:
    try:
        obj = json.loads(header)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ProtocolError("malformed", "header is not JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("malformed", "header is not a JSON object")
    return obj.get("v")


def _check_stats(msg: WorkerStats) -> None:
    for name, stats in msg.analyzers.items():
        for histogram in (stats.inference, stats.batch_size):
            le, counts = histogram.le, histogram.counts
            if (
                len(le) != len(counts)
                or any(b <= a for a, b in pairwise(le))
                or any(b < a for a, b in pairwise([*counts, histogram.count]))
            ):
                raise ProtocolError(
                    "malformed", f"worker_stats: {name}: not a cumulative histogram"
                )


def _check_payload(msg: Message, payloads: list[Any]) -> None:
    if isinstance(msg, VideoItem):
        h, w, c = msg.shape
        if c != 3 or not (0 < h <= MAX_IMAGE_SIDE and 0 < w <= MAX_IMAGE_SIDE):
            raise ProtocolError("malformed", f"video shape {msg.shape} out of range")
    elif isinstance(msg, AudioItem) and not (
        0 < msg.shape[0] <= MAX_AUDIO_SAMPLES and 1 <= msg.channels <= MAX_AUDIO_CHANNELS
    ):
        raise ProtocolError("malformed", f"audio shape {msg.shape} out of range")
    expected = msg.payload_bytes() if isinstance(msg, VideoItem | AudioItem) else None
    if expected is None:
        if payloads:
            raise ProtocolError("malformed", f"{msg.type} carries no payload")
        return
    if len(payloads) != 1:
        raise ProtocolError("malformed", f"{msg.type} needs one payload, got {len(payloads)}")
    size = len(payloads[0])  # bytes, or a zmq.Frame: its size without a memoryview
    if size != expected:
        raise ProtocolError("size", f"{msg.type} payload is {size} bytes, header says {expected}")


def _as_bytes(frame: Any) -> bytes:
    return frame if isinstance(frame, bytes) else frame.bytes  # zmq.Frame: one copy, no view
