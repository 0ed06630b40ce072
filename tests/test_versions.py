"""A peer speaking another protocol version is refused, both sides naming both versions."""

from __future__ import annotations

import json
import subprocess
import time

import zmq
from prometheus_client import CollectorRegistry

from daemon.core.metrics import Metrics
from daemon.dispatch.dispatcher import Dispatcher
from daemon.wire import protocol
from daemon.wire.endpoints import bind_server
from tests.conftest import ROOT, worker_argv


def test_old_worker_is_refused_naming_both_versions() -> None:
    ctx = zmq.Context()
    sock = bind_server(ctx, zmq.ROUTER, "tcp://127.0.0.1:*")
    metrics = Metrics(CollectorRegistry())
    disp = Dispatcher(sock, metrics, 1000, 3, lambda r: True, lambda h: None, lambda h, r: None)
    old = ctx.socket(zmq.DEALER)
    old.setsockopt(zmq.LINGER, 0)
    old.connect(disp.endpoint)
    old.send(json.dumps({"v": 0, "type": "register", "kind": "vision"}).encode())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not old.poll(50, zmq.POLLIN):
        disp.handle_incoming()
    reply = json.loads(old.recv())
    assert reply["type"] == "refuse"
    assert f"protocol version 0, this side speaks {protocol.PROTOCOL_VERSION}" in reply["reason"]
    assert not disp.peers
    assert (
        metrics.registry.get_sample_value(
            "tandem_messages_rejected_total", {"socket": "dispatch", "reason": "version"}
        )
        == 1
    )
    old.close()
    sock.close()
    ctx.term()


def test_worker_refused_by_tandemd_exits_2_with_the_reason() -> None:
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    worker = subprocess.Popen(
        worker_argv("vision", f"tcp://127.0.0.1:{port}"),
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert router.poll(60_000, zmq.POLLIN), "the worker never registered"
        identity, _ = router.recv_multipart()
        reason = "protocol version 2, this side speaks 3; upgrade the worker"
        refuse = protocol.Refuse(v=protocol.PROTOCOL_VERSION, reason=reason)
        router.send_multipart([identity, protocol.encode(refuse)])
        _, stderr = worker.communicate(timeout=30)
        assert worker.returncode == 2
        assert reason in stderr
    finally:
        worker.kill()
        worker.communicate()
        router.close()
        ctx.term()
