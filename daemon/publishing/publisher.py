"""The results bus: multipart `[topic, json]` on a PUB socket; topic is `<kind>.<stream>`."""

from __future__ import annotations

import json
from typing import Any

import zmq

CLOSE_LINGER_MS = 1000  # on shutdown, give subscribers this long to receive the last records


class Publisher:
    def __init__(self, sock: zmq.Socket[bytes]) -> None:
        self.sock = sock  # a bound PUB socket (see daemon.endpoints.bind_server)
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def publish(self, kind: str, stream: str, record: dict[str, Any]) -> None:
        body = json.dumps(record, separators=(",", ":"), allow_nan=False).encode()
        self.sock.send_multipart([f"{kind}.{stream}".encode(), body])

    def close(self) -> None:
        self.sock.close(linger=CLOSE_LINGER_MS)
