"""Subscriber API: iterate tandem's published records with a topic filter.

    from daemon.publishing.subscriber import Event, Fused, Subscriber
    with Subscriber("tcp://127.0.0.1:7701", topics=["fused.", "event."]) as sub:
        for message in sub.messages(timeout_s=5):
            if isinstance(message, Event):
                print(message.name, message.start, message.end)
            elif isinstance(message, Fused):
                print(message.stream, message.window.start, message.partial)

Topics: `fused.` (Fused), `event.` (Event), `status.` (Status, or AnalysisRate when the
overload policy changed the analysis fps), `detections.` (Detections: every analyzer's
outputs per frame or chunk), `snapshot.` (SnapshotImage: the JPEG of an event's start),
`correction.` (Correction). These are the record types tandemd publishes
(daemon/publishing/records.py). `records()` yields the raw (topic, dict) pairs instead
(a snapshot's dict carries its JPEG bytes as `jpeg`). ZeroMQ reconnects by itself when
tandemd restarts (every 100 ms up to 5 s apart); messages published while nobody was
connected are not replayed: ask the control endpoint for the events active now
(`active_events`).

Forward compatible: fields a newer tandemd adds are ignored (the known ones still
validated and typed). A record that does not fit its type (a wrong type, a missing
field), of a type this version does not know, or not JSON is skipped, counted in
`Subscriber.skipped` by reason, and the first of each reason logged.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
import zmq

from daemon.control.server import ask
from daemon.publishing.records import (
    AnalysisRate,
    Correction,
    Detections,
    Event,
    Fused,
    Snapshot,
    Status,
)

__all__ = [
    "AnalysisRate",
    "Correction",
    "Detections",
    "Event",
    "Fused",
    "Message",
    "SnapshotImage",
    "Status",
    "Subscriber",
    "active_events",
    "typed",
    "wait_for",
]

log = logging.getLogger("subscriber")


class SnapshotImage(msgspec.Struct, frozen=True):
    """A `snapshot.<stream>` message: its header and the JPEG of the frame at an event's
    start (the one part that is not JSON)."""

    header: Snapshot
    jpeg: bytes

    @property
    def stream(self) -> str:
        return self.header.stream


# The records tandemd publishes (daemon/publishing/records.py, one definition for both
# sides, the JSON Schemas in docs/schema/ generated from them), by their `type`.
Message = Fused | Event | Status | AnalysisRate | Detections | Correction | SnapshotImage
_TYPES: dict[str, type[msgspec.Struct]] = {
    "fused": Fused,
    "event": Event,
    "status": Status,
    "analysis_rate": AnalysisRate,
    "detections": Detections,
    "correction": Correction,
}


class _UnfitError(ValueError):
    """A published message this version cannot type; `reason`: `unknown_type` or
    `invalid`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def typed(message: dict[str, Any]) -> Message | None:
    """The typed view of a published message; None for a type this version does not know
    or a message that does not fit it. Fields it does not declare are ignored."""
    try:
        return _decode(message)
    except _UnfitError:
        return None


def _decode(message: dict[str, Any]) -> Message:
    """The typed view of a published message, ignoring fields its type does not declare;
    _UnfitError for a type this version does not know or a message that does not fit it."""
    kind = message.get("type")
    try:
        if kind == "snapshot":
            header = {k: v for k, v in message.items() if k != "jpeg"}
            return SnapshotImage(msgspec.convert(header, Snapshot), message["jpeg"])
        cls = _TYPES.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise _UnfitError("unknown_type", f"type {kind!r} is not one this version knows")
        return msgspec.convert(message, cls)  # type: ignore[return-value]
    except KeyError as exc:
        raise _UnfitError("invalid", f"no {exc}") from None
    except msgspec.ValidationError as exc:
        raise _UnfitError("invalid", str(exc)) from None


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
        # Messages skipped, by reason: `invalid` (does not fit its type), `unknown_type`
        # (messages() only), `undecodable` (not JSON, or the wrong number of frames).
        self.skipped: Counter[str] = Counter()

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
                self._skip(topic, "undecodable", f"{len(frames)} frames")
                continue
            try:
                record = json.loads(frames[1])
            except ValueError as exc:
                self._skip(topic, "undecodable", f"not JSON: {exc}")
                continue
            if len(frames) == 3 and isinstance(record, dict):
                record["jpeg"] = frames[2]  # bytes: the one field that is not JSON
            yield topic, record

    def messages(self, timeout_s: float | None = None) -> Iterator[Message]:
        """Yield typed messages; stop after `timeout_s` without one (None: never)."""
        for topic, raw in self.records(timeout_s):
            try:
                if not isinstance(raw, dict):
                    raise _UnfitError("invalid", f"a JSON {type(raw).__name__}, not an object")
                message = _decode(raw)
            except _UnfitError as exc:
                self._skip(topic, exc.reason, str(exc))
                continue
            yield message

    def _skip(self, topic: str, reason: str, detail: str) -> None:
        """Count a skipped message; log the first of each reason: a warning, but for
        `unknown_type` (a newer tandemd may publish kinds this version does not know)."""
        self.skipped[reason] += 1
        if self.skipped[reason] == 1:
            level = logging.INFO if reason == "unknown_type" else logging.WARNING
            log.log(
                level,
                "%s: skipped a message (%s): %s; further ones are counted in "
                "Subscriber.skipped[%r]",
                topic,
                reason,
                detail,
                reason,
            )

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
