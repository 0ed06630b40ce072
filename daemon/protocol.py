"""The wire protocol between tandemd, its ingest processes and its workers.

Every message is multipart: `[header, payload...]`. The header is UTF-8 JSON with the
protocol version `v` and a message `type`; payloads are raw buffers (never pickled).
Everything read from a socket goes through `decode`, which validates the header and the
payload sizes before anything else looks at them. See docs/protocol.md.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 2
MAX_IMAGE_SIDE = 8192
MAX_AUDIO_SAMPLES = 192000 * 60
MAX_AUDIO_CHANNELS = 8

StreamState = Literal["starting", "running", "stalled", "reconnecting", "failed", "stopped"]
STREAM_STATES: tuple[StreamState, ...] = get_args(StreamState)
JsonValue = float | int | bool | str | None | list[Any] | dict[str, Any]
Outputs = dict[str, dict[str, JsonValue]]


class BaseMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    v: int


class VideoItem(BaseMessage):
    """A video frame for analysis: payload is H x W x 3 uint8 RGB."""

    type: Literal["video"] = "video"
    stream: str = Field(max_length=64)
    seq: int = Field(ge=0)
    pts: float = Field(ge=0)
    duration: float = Field(ge=0)
    wall: float
    shape: tuple[int, int, int]
    dtype: Literal["uint8"] = "uint8"
    sender_wall: float | None = None  # the source's own wall clock (RTCP), when known
    skip: list[str] = Field(default_factory=list, max_length=64)  # on-demand analyzers off

    def payload_bytes(self) -> int:
        h, w, c = self.shape
        return h * w * c


class AudioItem(BaseMessage):
    """An audio chunk for analysis: payload is n float32 samples, mono (shape [n]) or
    interleaved channels (shape [n, channels])."""

    type: Literal["audio"] = "audio"
    stream: str = Field(max_length=64)
    seq: int = Field(ge=0)
    pts: float = Field(ge=0)
    wall: float
    rate: int = Field(ge=1000, le=384000)
    shape: tuple[int] | tuple[int, int]
    dtype: Literal["float32"] = "float32"
    sender_wall: float | None = None  # the source's own wall clock (RTCP), when known
    skip: list[str] = Field(default_factory=list, max_length=64)  # on-demand analyzers off

    @property
    def duration(self) -> float:
        return self.shape[0] / self.rate

    @property
    def channels(self) -> int:
        return self.shape[1] if len(self.shape) == 2 else 1

    def payload_bytes(self) -> int:
        return self.shape[0] * self.channels * 4


class IngestHello(BaseMessage):
    """An ingest process opened its source: which modalities it will send."""

    type: Literal["ingest_hello"] = "ingest_hello"
    stream: str
    pid: int
    video: bool
    audio: bool


class IngestStats(BaseMessage):
    """Cumulative counters of an ingest process since it started."""

    type: Literal["ingest_stats"] = "ingest_stats"
    stream: str
    counters: dict[str, int]
    drops: dict[str, int]  # "modality:reason" -> count


class IngestState(BaseMessage):
    """The stream's health state changed (streams/health.py). `video`/`audio` say what
    the source carries once it is `running`."""

    type: Literal["ingest_state"] = "ingest_state"
    stream: str
    state: StreamState
    previous: StreamState
    reason: str = Field(max_length=4096)
    at: float
    video: bool | None = None
    audio: bool | None = None


class IngestEnd(BaseMessage):
    type: Literal["ingest_end"] = "ingest_end"
    stream: str
    reason: Literal["eof", "error", "stopped"]
    error: str | None = None


class Credit(BaseMessage):
    """tandemd to a sender: you may send `n` more items."""

    type: Literal["credit"] = "credit"
    n: int = Field(ge=0)


class IngestControl(BaseMessage):
    """tandemd to an ingest process: analyse at this fps from now on (overload policy)."""

    type: Literal["ingest_control"] = "ingest_control"
    fps: float = Field(gt=0, le=120)


class Stop(BaseMessage):
    type: Literal["stop"] = "stop"


class Register(BaseMessage):
    """A worker's first message: what it is and how many items it can hold."""

    type: Literal["register"] = "register"
    kind: Literal["vision", "audio"]
    capacity: int = Field(ge=1, le=4096)
    analyzers: list[str]
    name: str = Field(max_length=128)


class Welcome(BaseMessage):
    type: Literal["welcome"] = "welcome"
    heartbeat_ms: int
    liveness: int


class Refuse(BaseMessage):
    type: Literal["refuse"] = "refuse"
    reason: str


class Heartbeat(BaseMessage):
    type: Literal["heartbeat"] = "heartbeat"


class Result(BaseMessage):
    """A worker's answer to one item: every analyzer's outputs, or the error."""

    type: Literal["result"] = "result"
    stream: str
    modality: Literal["video", "audio"]
    seq: int = Field(ge=0)
    pts: float
    wall: float
    outputs: Outputs
    errors: dict[str, str] = Field(default_factory=dict)
    infer_s: float = Field(ge=0)


class Results(BaseMessage):
    """A worker's answers to a batch of items, one message for the lot."""

    type: Literal["results"] = "results"
    results: list[Result] = Field(min_length=1, max_length=4096)


Message = Annotated[
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
    | Result
    | Results,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)
Item = VideoItem | AudioItem


class ProtocolError(Exception):
    """A message that failed validation; `reason` is the metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def encode(msg: BaseMessage) -> bytes:
    if isinstance(msg, VideoItem | AudioItem):
        # Absent rather than null or empty: workers of an older install know neither field.
        unset = {"sender_wall"} if msg.sender_wall is None else set()
        if not msg.skip:
            unset.add("skip")
        return msg.model_dump_json(exclude=unset).encode()
    return msg.model_dump_json().encode()


def decode(frames: list[Any]) -> tuple[Message, list[Any]]:
    """Validate `[header, payload...]` (bytes or zmq.Frame); return the message and payloads."""
    if not frames:
        raise ProtocolError("malformed", "empty message")
    header = _as_bytes(frames[0])
    try:
        msg = _ADAPTER.validate_json(header)
    except ValidationError as exc:
        # Another version's message may well not fit ours: say so rather than which field.
        _check_version(_peek_version(header))
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProtocolError("malformed", f"{where}: {first['msg']}") from None
    _check_version(msg.v)  # one parse on the hot path: the version is checked after it
    payloads = frames[1:]
    _check_payload(msg, payloads)
    return msg, payloads


def _check_version(version: object) -> None:
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            "version", f"protocol version {version}, this side speaks {PROTOCOL_VERSION}"
        )


def _peek_version(header: bytes) -> object:
    try:
        obj = json.loads(header)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("malformed", "header is not JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("malformed", "header is not a JSON object")
    return obj.get("v")


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
    return frame if isinstance(frame, bytes) else bytes(frame.buffer)
