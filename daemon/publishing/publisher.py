"""The results bus: multipart `[topic, json]` on a PUB socket; topic is `<kind>.<stream>`.

Publishing never waits: a PUB socket drops a message for a subscriber whose queue holds
`publish.hwm` messages (ZeroMQ does this per subscriber and does not tell the sender),
and anything the socket refuses outright, a record that is not valid JSON, or one that
does not fit its published type, is dropped here and counted in
tandem_publish_dropped_total{kind, reason}.

Fusion assembles fused records, events and corrections as dicts; they leave as their
types in daemon/publishing/records.py (the ones subscribers decode into and docs/schema/
is generated from), converted here: what goes out fits the schema at run time, not only
in the tests.

Batched (tandemd's publisher): publish() encodes and queues, and flush(), once a turn of
tandemd's loop, sends the queue back to back. A message sent alone wakes ZeroMQ's I/O
thread and costs a TCP send of its own; sent together, one wake-up and as few sends as
the batch fills. With a record per item (`detections.<stream>`) that is most of what
publishing costs.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import msgspec
import zmq
from prometheus_client import Counter

from daemon.publishing.records import Correction, Event, Fused, Snapshot, strict
from daemon.runtime.logs import RATE_LIMITED

log = logging.getLogger("publisher")
# Kinds published as dicts, and the record type each must fit exactly: strict variants,
# since the record types themselves ignore undeclared fields (a subscriber must accept a
# newer tandemd's additions; tandemd must not send a field its own types do not declare).
TYPED: dict[str, type[msgspec.Struct]] = {
    "fused": strict(Fused),
    "event": strict(Event),
    "correction": strict(Correction),
    "snapshot": strict(Snapshot),  # the header; the JPEG travels as the third part
}

CLOSE_LINGER_MS = 1000  # on shutdown, give subscribers this long to receive the last records
MAX_TOPICS = 4096  # encoded topics kept for reuse
MAX_QUEUED = 1024  # batched: a longer queue is sent at once, without waiting for flush()


class Publisher:
    def __init__(
        self, sock: zmq.Socket[bytes], dropped: Counter | None = None, batched: bool = False
    ) -> None:
        self.sock = sock  # a bound PUB socket (see daemon.wire.endpoints.bind_server)
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.dropped = dropped  # tandem_publish_dropped_total{kind, reason}
        self.batched = batched  # publish() queues, flush() sends
        self._queue: list[tuple[str, bytes, bytes, bytes | None]] = []
        self._topics: dict[tuple[str, str], bytes] = {}  # (kind, stream) -> b"<kind>.<stream>"

    def publish(
        self,
        kind: str,
        stream: str,
        record: dict[str, Any] | msgspec.Struct,
        payload: bytes | None = None,
    ) -> bool:
        """Send one record (a dict, or a typed record of daemon.publishing.records) as
        `[topic, json]`, or `[topic, json, payload]` with raw bytes (a snapshot's JPEG);
        False when it was dropped (and counted). Batched: queued until flush(), and a
        send refused then is counted there."""
        try:
            body = _encode(_typed(kind, record))
        except msgspec.ValidationError as exc:
            log.warning(
                "%s.%s: a record that does not fit its type was dropped: %s",
                kind,
                stream,
                exc,
                extra=RATE_LIMITED,
            )
            return self._drop(kind, "invalid")
        except (TypeError, ValueError, msgspec.EncodeError):
            log.warning("%s.%s: a record that is not valid JSON was dropped", kind, stream)
            return self._drop(kind, "unencodable")
        topic = self._topics.get((kind, stream))
        if topic is None:
            if len(self._topics) >= MAX_TOPICS:  # streams come and go by reloads
                self._topics.clear()
            topic = self._topics[(kind, stream)] = f"{kind}.{stream}".encode()
        if self.batched:
            self._queue.append((kind, topic, body, payload))
            if len(self._queue) >= MAX_QUEUED:
                self.flush()
            return True
        return self._send(kind, topic, body, payload)

    def flush(self) -> None:
        """Send what publish() queued, in order."""
        queue, self._queue = self._queue, []
        for kind, topic, body, payload in queue:
            self._send(kind, topic, body, payload)

    def _send(self, kind: str, topic: bytes, body: bytes, payload: bytes | None) -> bool:
        # Part by part rather than send_multipart: one message per item makes this a hot
        # path. A PUB socket takes every part or drops the whole message at its HWM.
        try:
            self.sock.send(topic, zmq.SNDMORE | zmq.NOBLOCK)
            if payload is None:
                self.sock.send(body, zmq.NOBLOCK)
            else:
                self.sock.send(body, zmq.SNDMORE | zmq.NOBLOCK)
                self.sock.send(payload, zmq.NOBLOCK)
        except zmq.Again:
            return self._drop(kind, "would_block")
        return True

    def _drop(self, kind: str, reason: str) -> bool:
        if self.dropped is not None:
            self.dropped.labels(kind, reason).inc()
        return False

    def close(self) -> None:
        self.flush()
        self.sock.close(linger=CLOSE_LINGER_MS)


def _typed(kind: str, record: dict[str, Any] | msgspec.Struct) -> dict[str, Any] | msgspec.Struct:
    cls = TYPED.get(kind)
    if cls is None or not isinstance(record, dict):
        return record
    return msgspec.convert(record, cls)


def _encode(record: dict[str, Any] | msgspec.Struct) -> bytes:
    if isinstance(record, msgspec.Struct):
        return _ENCODER.encode(record)  # NaN and infinities become null
    return json.dumps(record, separators=(",", ":"), allow_nan=False).encode()


_ENCODER = msgspec.json.Encoder()
