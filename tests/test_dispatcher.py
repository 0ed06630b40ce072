"""The dispatcher with real sockets, below the daemon: what it does when a worker
vanishes between registering and being sent to."""

from __future__ import annotations

import time

import numpy as np
import zmq
from prometheus_client import CollectorRegistry

from daemon import protocol
from daemon.dispatch.dispatcher import Dispatcher
from daemon.dispatch.peers import Held
from daemon.endpoints import bind_server
from daemon.metrics import Metrics


def register(ctx: zmq.Context, disp: Dispatcher, name: str, capacity: int) -> zmq.Socket:
    """A worker's DEALER, registered and welcomed."""
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(disp.endpoint)
    hello = protocol.Register(
        v=protocol.PROTOCOL_VERSION, kind="vision", capacity=capacity, analyzers=[], name=name
    )
    dealer.send(protocol.encode(hello))
    deadline = time.monotonic() + 5
    while not dealer.poll(20, zmq.POLLIN):
        assert time.monotonic() < deadline, f"{name} was never welcomed"
        disp.handle_incoming()
    assert protocol.decode([dealer.recv()])[0].type == "welcome"
    return dealer


def wait_until_unreachable(sock: zmq.Socket, identity: bytes) -> None:
    """Until the ROUTER itself knows the peer is gone (its sends fail), which happens
    before heartbeats tell the dispatcher."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            sock.send_multipart(
                [identity, protocol.encode(protocol.Heartbeat(v=protocol.PROTOCOL_VERSION))]
            )
        except zmq.ZMQError as exc:
            assert exc.errno == zmq.EHOSTUNREACH
            return
        time.sleep(0.01)
    raise AssertionError("the ROUTER never noticed the worker's disconnect")


def item(seq: int) -> Held:
    header = protocol.VideoItem(
        v=protocol.PROTOCOL_VERSION,
        stream="cam",
        seq=seq,
        pts=seq / 5,
        duration=0.2,
        wall=time.time(),
        shape=(4, 4, 3),
    )
    return Held(header, zmq.Frame(np.zeros((4, 4, 3), np.uint8)), time.monotonic())


def test_a_worker_gone_before_its_items_are_sent_is_forgotten_and_they_go_elsewhere() -> None:
    ctx = zmq.Context()
    sock = bind_server(ctx, zmq.ROUTER, "tcp://127.0.0.1:*")
    metrics = Metrics(CollectorRegistry())
    disp = Dispatcher(sock, metrics, 1000, 3, lambda r: True, lambda h: None, lambda h, r: None)
    gone = register(ctx, disp, "gone", capacity=8)  # more credit: chosen first
    alive = register(ctx, disp, "alive", capacity=4)
    assert len(disp.peers) == 2
    gone.close()
    wait_until_unreachable(sock, next(p.identity for p in disp.peers.values() if p.name == "gone"))
    for seq in range(3):
        disp.enqueue(item(seq))

    disp.dispatch()  # the send to "gone" fails (EHOSTUNREACH): it must not be tried again

    assert [p.name for p in disp.peers.values()] == ["alive"]
    received = []
    while len(received) < 3 and alive.poll(2000, zmq.POLLIN):
        header, _ = protocol.decode(alive.recv_multipart())
        received.append(header.seq)
    assert received == [0, 1, 2]  # every item, once, in order
    assert disp.queued("vision") == 0
    assert (
        metrics.registry.get_sample_value("tandem_items_dispatched_total", {"kind": "vision"}) == 3
    )
    alive.close()
    sock.close()
    ctx.term()
