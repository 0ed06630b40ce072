"""Results after their window went out: counted, and published as corrections if asked."""

from __future__ import annotations

import time

import pytest
import zmq
from prometheus_client import CollectorRegistry

from daemon.config import parse_config
from daemon.core.metrics import Metrics
from daemon.core.pipeline import Pipeline
from daemon.ingest.hub import bind_ingest
from daemon.publishing.publisher import Publisher
from daemon.publishing.subscriber import Subscriber
from daemon.wire.endpoints import bind_server
from tests.conftest import free_port
from tests.support.schemas import validate_published
from tests.test_fusion import result


def connected(publisher: Publisher, sub: Subscriber) -> None:
    """Publish probes until the subscriber sees one (PUB/SUB joins asynchronously)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        publisher.publish("probe", "s", {"probe": True})
        for topic, _ in sub.records(timeout_s=0.05):
            if topic == "probe.s":
                return
    raise AssertionError("subscriber never joined")


@pytest.mark.slow
@pytest.mark.parametrize("corrections", [True, False])
def test_late_result_is_counted_and_optionally_published(corrections: bool) -> None:
    config = parse_config(
        {
            "streams": [{"id": "s", "url": "x", "audio": False}],
            "fusion": {"corrections": corrections, "max_delay_ms": 0},
        }
    )
    port = free_port()
    with zmq.Context() as ctx:
        sock = ctx.socket(zmq.PUB)
        sock.bind(f"tcp://127.0.0.1:{port}")
        dispatch = bind_server(ctx, zmq.ROUTER, "inproc://dispatch")
        ingest = bind_ingest(ctx, "inproc://ingest", 1 << 20)
        pipeline = Pipeline(config, Metrics(CollectorRegistry()), Publisher(sock), dispatch, ingest)
        with Subscriber(f"tcp://127.0.0.1:{port}", ["probe.", "correction.", "fused."]) as sub:
            connected(pipeline.publisher, sub)
            fuser = pipeline.streams["s"].fuser
            for seq in range(6):
                fuser.on_item("video", seq, seq / 5, 0.2)
            for seq in (0, 1, 2, 3, 5):
                assert pipeline.on_result(result("video", seq, seq / 5)) is True
            [record] = fuser.due(time.monotonic() + 0.1)  # window 0 out, seq 4 missing
            assert record["missing"] == ["video"]
            assert pipeline.on_result(result("video", 4, 0.8)) is False
            assert fuser.late_results == 1
            got = [(t, m) for t, m in sub.records(timeout_s=0.5) if t != "probe.s"]
        for owned in (sock, dispatch, ingest):
            owned.close(linger=0)
    if not corrections:
        assert got == []
        return
    [(topic, message)] = got
    validate_published(topic, message)
    assert message["window"] == {"start": 0.0, "end": 1.0}
    assert (message["seq"], message["pts"], message["outputs"]) == (4, 0.8, {"x": {"value": 4.0}})
