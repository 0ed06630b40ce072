"""The results bus: multipart `[topic, json]` on a PUB socket; topic is `<kind>.<stream>`.

Publishing never waits: a PUB socket drops a message for a subscriber whose queue holds
`publish.hwm` messages (ZeroMQ does this per subscriber and does not tell the sender),
and anything the socket refuses outright, or a record that is not valid JSON, is
dropped here and counted in tandem_publish_dropped_total{kind, reason}.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import msgspec
import zmq
from prometheus_client import Counter

log = logging.getLogger("publisher")

CLOSE_LINGER_MS = 1000  # on shutdown, give subscribers this long to receive the last records


class Publisher:
    def __init__(self, sock: zmq.Socket[bytes], dropped: Counter | None = None) -> None:
        self.sock = sock  # a bound PUB socket (see daemon.endpoints.bind_server)
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.dropped = dropped  # tandem_publish_dropped_total{kind, reason}

    def publish(
        self,
        kind: str,
        stream: str,
        record: dict[str, Any] | msgspec.Struct,
        payload: bytes | None = None,
    ) -> bool:
        """Send one record (a dict, or a typed record of daemon.publishing.records) as
        `[topic, json]`, or `[topic, json, payload]` with raw bytes (a snapshot's JPEG);
        False when it was dropped (and counted)."""
        try:
            body = _encode(record)
        except (TypeError, ValueError, msgspec.EncodeError):
            log.warning("%s.%s: a record that is not valid JSON was dropped", kind, stream)
            return self._drop(kind, "unencodable")
        frames = [f"{kind}.{stream}".encode(), body]
        if payload is not None:
            frames.append(payload)
        try:
            self.sock.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            return self._drop(kind, "would_block")
        return True

    def _drop(self, kind: str, reason: str) -> bool:
        if self.dropped is not None:
            self.dropped.labels(kind, reason).inc()
        return False

    def close(self) -> None:
        self.sock.close(linger=CLOSE_LINGER_MS)


def _encode(record: dict[str, Any] | msgspec.Struct) -> bytes:
    if isinstance(record, msgspec.Struct):
        return _ENCODER.encode(record)  # NaN and infinities become null
    return json.dumps(record, separators=(",", ":"), allow_nan=False).encode()


_ENCODER = msgspec.json.Encoder()
