"""The subscriber API over real sockets: typed messages, prefix filters, reconnecting."""

from __future__ import annotations

import time

import zmq

from daemon.publishing.subscriber import Event, Fused, Status, Subscriber
from tests.conftest import free_port

EVENT = {"schema": 1, "type": "event", "stream": "cam1", "name": "black", "id": "cam1/black/1",
         "edge": "start", "start": 3.0, "end": None, "duration_s": None, "ended_by": None,
         "at": 1.0}  # fmt: skip


def publish_until_seen(pub: zmq.Socket, sub: Subscriber, topic: str, message: dict) -> list:
    """Publish until the subscriber receives (PUB/SUB joins asynchronously)."""
    import json

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pub.send_multipart([topic.encode(), json.dumps(message).encode()])
        got = list(sub.messages(timeout_s=0.1))
        if got:
            return got
    raise AssertionError(f"{topic} never arrived")


def test_typed_messages_and_reconnect_after_the_publisher_restarts() -> None:
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    with zmq.Context() as ctx, Subscriber(endpoint, ["event.cam1", "status."]) as sub:
        pub = ctx.socket(zmq.PUB)
        pub.bind(endpoint)
        [first, *_] = publish_until_seen(pub, sub, "event.cam1", EVENT)
        assert isinstance(first, Event) and (first.name, first.start, first.end) == (
            "black",
            3.0,
            None,
        )
        # A fused record is not subscribed to: filtered by the topic prefix.
        pub.send_multipart([b"fused.cam1", b"{}"])
        pub.close(linger=0)  # tandemd goes away...
        time.sleep(0.3)
        pub = ctx.socket(zmq.PUB)  # ...and comes back on the same endpoint
        pub.bind(endpoint)
        status = {"schema": 1, "type": "status", "stream": "cam1", "state": "running",
                  "detail": None, "at": 2.0}  # fmt: skip
        got = publish_until_seen(pub, sub, "status.cam1", status)
        assert all(isinstance(m, Status) for m in got)
        assert not any(isinstance(m, Fused) for m in got)
        pub.close(linger=0)
