"""The publisher on a real PUB socket: records in order, batched ones only once flushed,
unencodable ones dropped and counted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import msgspec
import pytest
import zmq
from prometheus_client import CollectorRegistry, Counter

from daemon.publishing.publisher import Publisher
from daemon.publishing.records import Detections, Event


@pytest.fixture
def pair() -> Iterator[tuple[zmq.Socket[bytes], zmq.Socket[bytes]]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    pub, sub = ctx.socket(zmq.PUB), ctx.socket(zmq.SUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"tcp://127.0.0.1:{port}")
    deadline = time.monotonic() + 5  # until the subscription has reached the publisher
    while not sub.poll(50):
        assert time.monotonic() < deadline, "the subscription never arrived"
        pub.send_multipart([b"probe", b"{}"])
    while sub.poll(100):
        sub.recv_multipart()
    yield pub, sub
    pub.close(linger=0)
    sub.close(linger=0)
    ctx.term()


def received(sub: zmq.Socket[bytes], wait_ms: int = 1000) -> list[list[bytes]]:
    out = []
    while sub.poll(wait_ms):
        out.append(sub.recv_multipart())
        wait_ms = 200
    return out


EVENT = {"schema": 1, "type": "event", "stream": "s", "name": "moving", "id": "s/moving/1",
         "edge": "start", "start": 2.0, "end": None, "duration_s": None, "ended_by": None,
         "at": 1.0}  # fmt: skip


CORRECTION = {"schema": 1, "type": "correction", "stream": "s",
              "window": {"start": 2.0, "end": 3.0}, "modality": "audio", "seq": 4, "pts": 2.5,
              "outputs": {"level": {"rms_dbfs": -20.0}}, "errors": {},
              "published_at": 1.0}  # fmt: skip


def record(seq: int) -> Detections:
    return Detections(
        stream="s", modality="video", seq=seq, pts=seq / 5, end=(seq + 1) / 5, wall=0.0,
        infer_s=0.0, outputs={"motion": {"boxes": [[0.1, 0.2, 0.3, 0.4]]}}, errors={},
        published_at=0.0,
    )  # fmt: skip


SNAPSHOT = {
    "stream": "s", "event_id": "s-1", "event": "person_seen", "pts": 2.5,
    "path": None, "width": 640, "height": 360, "bytes": 4,
}  # fmt: skip


def test_records_go_out_as_topic_and_json_in_order(
    pair: tuple[zmq.Socket[bytes], zmq.Socket[bytes]],
) -> None:
    pub, sub = pair
    publisher = Publisher(pub)
    assert publisher.publish("detections", "s", record(0))
    assert publisher.publish("probe", "s", {"type": "probe", "x": 1.5})
    assert publisher.publish("snapshot", "s", SNAPSHOT, b"\xff\xd8jpeg")
    frames = received(sub)
    assert [f[0] for f in frames] == [b"detections.s", b"probe.s", b"snapshot.s"]
    assert frames[0][1].startswith(b'{"schema":1,"type":"detections","stream":"s"')
    assert frames[1][1] == b'{"type":"probe","x":1.5}'
    assert json.loads(frames[2][1]) == {"schema": 1, "type": "snapshot", **SNAPSHOT}
    assert frames[2][2] == b"\xff\xd8jpeg"


def test_batched_records_go_out_in_order_when_flushed(
    pair: tuple[zmq.Socket[bytes], zmq.Socket[bytes]],
) -> None:
    pub, sub = pair
    registry = CollectorRegistry()
    dropped = Counter("dropped", "", ["kind", "reason"], registry=registry)
    publisher = Publisher(pub, dropped, batched=True)
    for seq in range(50):
        assert publisher.publish("detections", "s", record(seq))
    assert not publisher.publish("probe", "s", {"bad": float("nan")})  # refused at once
    labels = {"kind": "probe", "reason": "unencodable"}
    assert registry.get_sample_value("dropped_total", labels) == 1
    assert received(sub, wait_ms=300) == []
    publisher.flush()
    frames = received(sub)
    assert [f[0] for f in frames] == [b"detections.s"] * 50
    seqs = [int(f[1].split(b'"seq":')[1].split(b",")[0]) for f in frames]
    assert seqs == list(range(50))
    publisher.publish("event", "s", EVENT)
    publisher.close()  # sends what is still queued
    assert [f[0] for f in received(sub)] == [b"event.s"]


def test_an_event_that_does_not_fit_its_type_is_dropped_and_counted(
    pair: tuple[zmq.Socket[bytes], zmq.Socket[bytes]],
) -> None:
    pub, sub = pair
    dropped = Counter("dropped", "", ["kind", "reason"], registry=CollectorRegistry())
    publisher = Publisher(pub, dropped)
    assert publisher.publish("event", "s", EVENT)
    assert not publisher.publish("event", "s", {**EVENT, "edge": "sideways"})
    assert not publisher.publish("event", "s", {**EVENT, "extra": 1})
    frames = received(sub)
    assert len(frames) == 1 and json.loads(frames[0][1]) == EVENT  # as the type encodes it
    assert frames[0][1] == msgspec.json.encode(msgspec.convert(EVENT, Event))  # field order
    assert dropped.labels("event", "invalid")._value.get() == 2


def test_a_field_its_type_does_not_declare_is_dropped_at_any_depth(
    pair: tuple[zmq.Socket[bytes], zmq.Socket[bytes]],
) -> None:
    """The record types ignore undeclared fields (for subscribers of an older version);
    tandemd's own records are held to exactly theirs."""
    pub, sub = pair
    dropped = Counter("dropped", "", ["kind", "reason"], registry=CollectorRegistry())
    publisher = Publisher(pub, dropped)
    window = CORRECTION["window"]
    assert not publisher.publish("correction", "s", {**CORRECTION, "window": {**window, "x": 1}})
    assert publisher.publish("correction", "s", CORRECTION)
    frames = received(sub)
    assert len(frames) == 1 and json.loads(frames[0][1]) == CORRECTION
    assert dropped.labels("correction", "invalid")._value.get() == 1


def test_a_snapshot_header_is_held_to_its_type_and_keeps_its_jpeg(
    pair: tuple[zmq.Socket[bytes], zmq.Socket[bytes]],
) -> None:
    pub, sub = pair
    dropped = Counter("dropped", "", ["kind", "reason"], registry=CollectorRegistry())
    publisher = Publisher(pub, dropped)
    header = SNAPSHOT
    assert not publisher.publish("snapshot", "s", {**header, "extra": 1}, b"\xff\xd8\xff\xd9")
    assert publisher.publish("snapshot", "s", header, b"\xff\xd8\xff\xd9")
    frames = received(sub)
    assert len(frames) == 1 and frames[0][2] == b"\xff\xd8\xff\xd9"
    assert json.loads(frames[0][1]) == {"schema": 1, "type": "snapshot", **header}
    assert dropped.labels("snapshot", "invalid")._value.get() == 1
