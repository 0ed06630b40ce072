"""Subscriber API: iterate tandem's published records with a topic filter.

    from daemon.publishing.subscriber import Event, FusedRecord, Subscriber
    with Subscriber("tcp://127.0.0.1:7701", topics=["fused.", "event."]) as sub:
        for message in sub.messages(timeout_s=5):
            if isinstance(message, Event):
                print(message.name, message.start, message.end)
            elif isinstance(message, FusedRecord):
                print(message.stream, message.start, message.end, message.partial)

Topics: `fused.` (FusedRecord), `event.` (Event), `status.` (Status), `detections.`
(Detections: every analyzer's outputs per frame or chunk), `snapshot.` (Snapshot: the
JPEG of an event's start). `records()` yields the raw (topic, dict) pairs instead (a
snapshot's dict carries its JPEG bytes as `jpeg`). ZeroMQ reconnects by itself when
tandemd restarts (every 100 ms up to 5 s apart); messages published while nobody was
connected are not replayed: ask the control endpoint for the events active now
(`active_events`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import zmq

from daemon.control.server import ask
from daemon.publishing.records import Detections


@dataclass(frozen=True)
class FusedRecord:
    """A `fused.<stream>` record: one window of media time (docs/results.md)."""

    stream: str
    start: float
    end: float
    partial: bool
    missing: list[str]
    latency_s: float | None
    events: list[dict[str, Any]]
    video: dict[str, Any] | None
    audio: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Event:
    """An `event.<stream>` message: an event started (`end` None) or ended."""

    stream: str
    name: str
    id: str
    edge: str
    start: float
    end: float | None
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Status:
    """A `status.<stream>` message: the stream's health changed."""

    stream: str
    state: str
    detail: str | None
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Snapshot:
    """A `snapshot.<stream>` message: the JPEG of the frame at an event's start."""

    stream: str
    event_id: str
    event: str
    pts: float
    path: str | None  # where tandemd wrote it (null when it could not)
    jpeg: bytes
    raw: dict[str, Any] = field(repr=False)


Message = FusedRecord | Event | Status | Detections | Snapshot


def typed(message: dict[str, Any]) -> Message | None:
    """The typed view of a published message; None for a type this version does not know."""
    try:
        kind = message["type"]
        if kind == "fused":
            w = message["window"]
            return FusedRecord(
                message["stream"], w["start"], w["end"], message["partial"], message["missing"],
                message["latency_s"], message.get("events", []), message["video"],
                message["audio"], message,
            )  # fmt: skip
        if kind == "event":
            return Event(
                message["stream"], message["name"], message["id"], message["edge"],
                message["start"], message["end"], message,
            )  # fmt: skip
        if kind == "status":
            return Status(message["stream"], message["state"], message.get("detail"), message)
        if kind == "detections":
            return msgspec.convert(message, Detections)
        if kind == "snapshot":
            return Snapshot(
                message["stream"], message["event_id"], message["event"], message["pts"],
                message["path"], message["jpeg"], message,
            )  # fmt: skip
    except (KeyError, TypeError, msgspec.ValidationError):
        return None
    return None


class Subscriber:
    """`endpoint`: one tandemd's publish endpoint, or a list: every shard of a cluster
    (one socket connected to all; each message comes from one of them)."""

    def __init__(self, endpoint: str | Sequence[str], topics: list[str] | None = None) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 100000)
        self.sock.setsockopt(zmq.RECONNECT_IVL, 100)
        self.sock.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)
        for topic in topics or [""]:
            self.sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        for one in [endpoint] if isinstance(endpoint, str) else endpoint:
            self.sock.connect(one)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def records(self, timeout_s: float | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield (topic, record); stop after `timeout_s` without a message (None: never)."""
        while True:
            wait_ms = None if timeout_s is None else int(timeout_s * 1000)
            if not self.sock.poll(wait_ms, zmq.POLLIN):
                return
            frames = self.sock.recv_multipart()
            topic = frames[0].decode(errors="replace")
            # [topic, json]; a snapshot is [topic, json header, JPEG bytes].
            if len(frames) != (3 if topic.startswith("snapshot.") else 2):
                continue
            try:
                record = json.loads(frames[1])
            except ValueError:
                continue
            if len(frames) == 3 and isinstance(record, dict):
                record["jpeg"] = frames[2]  # bytes: the one field that is not JSON
            yield topic, record

    def messages(self, timeout_s: float | None = None) -> Iterator[Message]:
        """Yield typed messages; stop after `timeout_s` without one (None: never)."""
        for _topic, raw in self.records(timeout_s):
            message = typed(raw) if isinstance(raw, dict) else None
            if message is not None:
                yield message

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


def wait_for(sub: Subscriber, count: int, timeout_s: float) -> list[tuple[str, dict[str, Any]]]:
    """Collect `count` records or whatever arrived within `timeout_s`."""
    out: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for item in sub.records(timeout_s=left):
            out.append(item)
            break
        else:
            break
    return out


def active_events(
    control_endpoint: str, stream: str | None = None, timeout_s: float = 5.0
) -> list[Event]:
    """The events active now, asked of tandemd's control endpoint (a late subscriber's
    catch-up; PUB/SUB does not replay)."""
    request: dict[str, Any] = {"type": "active_events"}
    if stream is not None:
        request["stream"] = stream
    reply = ask(control_endpoint, request, timeout_s)
    if reply.get("type") != "active_events":
        raise ValueError(f"{control_endpoint}: {reply.get('error', reply)}")
    return [e for e in (typed(m) for m in reply["events"]) if isinstance(e, Event)]
