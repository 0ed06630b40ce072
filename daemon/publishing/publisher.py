"""The results bus: multipart `[topic, json]` on a PUB socket; topic is `<kind>.<stream>`."""

from __future__ import annotations

import json
from typing import Any

import zmq

CLOSE_LINGER_MS = 1000  # on shutdown, give subscribers this long to receive the last records


class Publisher:
    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, hwm: int) -> None:
        self.sock = ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.SNDHWM, hwm)
        self.sock.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)
        self.sock.bind(endpoint)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def publish(self, kind: str, stream: str, record: dict[str, Any]) -> None:
        body = json.dumps(record, separators=(",", ":"), allow_nan=False).encode()
        self.sock.send_multipart([f"{kind}.{stream}".encode(), body])

    def close(self) -> None:
        self.sock.close()
