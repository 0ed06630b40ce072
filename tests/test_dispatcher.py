"""The dispatcher with real sockets, below the daemon: what it does when a worker
vanishes between registering and being sent to, or stops reading."""

from __future__ import annotations

import threading
import time

import numpy as np
import zmq
from prometheus_client import CollectorRegistry

from daemon import protocol
from daemon.dispatch.dispatcher import Dispatcher
from daemon.dispatch.peers import Held
from daemon.endpoints import bind_server
from daemon.metrics import Metrics
from tests.conftest import wait_until


def register(
    ctx: zmq.Context, disp: Dispatcher, name: str, capacity: int, rcvhwm: int = 1000
) -> zmq.Socket:
    """A worker's DEALER, registered and welcomed."""
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.RCVHWM, rcvhwm)
    dealer.connect(disp.endpoint)
    hello = protocol.Register(
        v=protocol.PROTOCOL_VERSION, kind="vision", capacity=capacity, analyzers=[], name=name
    )
    dealer.send(protocol.encode(hello))

    def welcomed() -> bool:
        disp.handle_incoming()
        return bool(dealer.poll(0, zmq.POLLIN))

    assert wait_until(welcomed, 5, 0.02), f"{name} was never welcomed"
    assert protocol.decode([dealer.recv()])[0].type == "welcome"
    return dealer


def wait_until_unreachable(sock: zmq.Socket, identity: bytes) -> None:
    """Until the ROUTER itself knows the peer is gone (its sends fail), which happens
    before heartbeats tell the dispatcher."""
    probe = protocol.encode(protocol.Heartbeat(v=protocol.PROTOCOL_VERSION))

    def refused() -> bool:
        try:
            sock.send_multipart([identity, probe])
        except zmq.ZMQError as exc:
            assert exc.errno == zmq.EHOSTUNREACH
            return True
        return False

    assert wait_until(refused, 5, 0.01), "the ROUTER never noticed the worker's disconnect"


def item(
    seq: int, payload: zmq.Frame | None = None, shape: tuple[int, int, int] = (4, 4, 3)
) -> Held:
    header = protocol.VideoItem(
        v=protocol.PROTOCOL_VERSION,
        stream="cam",
        seq=seq,
        pts=seq / 5,
        duration=0.2,
        wall=time.time(),
        shape=shape,
    )
    frame = payload if payload is not None else zmq.Frame(np.zeros(shape, np.uint8))
    return Held(header, frame, time.monotonic())


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


def test_a_worker_that_stops_reading_never_blocks_the_loop() -> None:
    """Its capacity is more than ZeroMQ's high-water mark lets through: once its pipe is
    full, the rest stays queued (for heartbeats to decide) instead of the send waiting."""
    ctx = zmq.Context()
    sock = bind_server(ctx, zmq.ROUTER, "tcp://127.0.0.1:*", options={zmq.SNDHWM: 2})
    disp = Dispatcher(
        sock,
        Metrics(CollectorRegistry()),
        1000,
        3,
        lambda r: True,
        lambda h: None,
        lambda h, r: None,
    )
    stuck = register(ctx, disp, "stuck", capacity=64, rcvhwm=1)  # and it never reads
    shape = (1024, 1024, 3)  # 3 MiB: the kernel's socket buffers fill after a few
    payload = zmq.Frame(np.zeros(shape, np.uint8))
    for seq in range(40):
        disp.enqueue(item(seq, payload, shape))

    turn = threading.Thread(target=disp.dispatch, daemon=True)
    turn.start()
    turn.join(10)

    assert not turn.is_alive(), "dispatch() blocked on a worker that stopped reading"
    (peer,) = disp.peers.values()  # still registered: only heartbeats declare it dead
    assert 0 < len(peer.inflight) < 40
    assert disp.queued("vision") == 40 - len(peer.inflight)  # nothing lost, nothing twice
    stuck.close()
    sock.close()
    ctx.term()
