"""The subscriber API over real sockets: typed messages, prefix filters, reconnecting."""

from __future__ import annotations

import json
import logging
import time

import msgspec
import pytest
import zmq

from daemon.publishing.records import TrackSeen, Window
from daemon.publishing.subscriber import Event, Fused, Status, Subscriber
from tests.conftest import free_port

EVENT = {"schema": 1, "type": "event", "stream": "cam1", "name": "black", "id": "cam1/black/1",
         "edge": "start", "start": 3.0, "end": None, "duration_s": None, "ended_by": None,
         "at": 1.0}  # fmt: skip


def publish_until_seen(pub: zmq.Socket, sub: Subscriber, topic: str, message: dict) -> list:
    """Publish until the subscriber receives (PUB/SUB joins asynchronously)."""
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


TRACK = TrackSeen(id=3, analyzer="persons", label="person", box=[0.1, 0.2, 0.3, 0.4],
                  score=0.9, best_score=0.95, first_seen=1.0, last_seen=2.5,
                  ended=False)  # fmt: skip
WINDOW = Window(start=2.0, end=3.0, wall_start=None, wall_end=None)


def fused_with_fields_from_a_newer_tandemd() -> dict:
    fused = Fused(stream="cam1", window=WINDOW, missing=["audio"], partial=True, latency_s=0.2,
                  published_at=1.0, events=[], av_sync=None, video=None, audio=None,
                  tracks=[TRACK])  # fmt: skip
    record = msgspec.to_builtins(fused)
    record["mood"] = "calm"  # fields this version does not declare, at every depth
    record["window"]["frames"] = 25
    record["tracks"][0]["velocity"] = [0.01, 0.0]
    return record


def test_fields_a_newer_tandemd_adds_are_ignored_and_malformed_records_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with zmq.Context() as ctx, Subscriber(endpoint, ["fused.", "event."]) as sub:
        pub = ctx.socket(zmq.PUB)
        pub.bind(endpoint)
        [first, *_] = publish_until_seen(pub, sub, "event.cam1", {**EVENT, "confidence": 0.8})
        assert isinstance(first, Event) and (first.name, first.id, first.start) == (
            "black",
            "cam1/black/1",
            3.0,
        )
        wrong_type = {**EVENT, "start": "three"}
        missing = {k: v for k, v in EVENT.items() if k != "edge"}
        newer = fused_with_fields_from_a_newer_tandemd()
        with caplog.at_level(logging.WARNING, logger="subscriber"):
            for message in (wrong_type, missing, newer):
                pub.send_multipart(
                    [f"{message['type']}.cam1".encode(), json.dumps(message).encode()]
                )
            # In order on one connection: the two before it were skipped when it arrives.
            fused = next(m for m in sub.messages(timeout_s=5) if not isinstance(m, Event))
        pub.close(linger=0)
    assert isinstance(fused, Fused) and (fused.stream, fused.window.start, fused.partial) == (
        "cam1",
        2.0,
        True,
    )
    assert (fused.window, fused.tracks) == (WINDOW, [TRACK])
    assert msgspec.to_builtins(fused).keys() == newer.keys() - {"mood"}
    assert sub.skipped == {"invalid": 2}
    [warning] = caplog.records  # the first of a reason is logged, the rest counted
    assert warning.levelno == logging.WARNING and "event.cam1" in warning.getMessage()
    assert "Expected `float`, got `str` - at `$.start`" in warning.getMessage()
