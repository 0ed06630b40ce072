"""The dispatcher with real sockets, below the daemon: credit per worker, an item re-sent
after its worker died, a worker that vanishes between registering and being sent to, or
stops reading."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zmq
from prometheus_client import CollectorRegistry

from daemon.core.metrics import Metrics
from daemon.dispatch.dispatcher import Dispatcher
from daemon.dispatch.peers import Held
from daemon.wire import protocol
from daemon.wire.endpoints import bind_server
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


def received_seqs(dealer: zmq.Socket, wait_ms: int = 200) -> list[int]:
    """The items a worker's DEALER got (not tandemd's heartbeats), until nothing came for
    `wait_ms`."""
    seqs = []
    while dealer.poll(wait_ms, zmq.POLLIN):
        msg, _ = protocol.decode(dealer.recv_multipart())
        if isinstance(msg, protocol.VideoItem):
            seqs.append(msg.seq)
    return seqs


def answer(dealer: zmq.Socket, seq: int) -> None:
    held = item(seq)  # the same (stream, modality, seq) as the item sent
    dealer.send(
        protocol.encode(
            protocol.Result(
                v=protocol.PROTOCOL_VERSION,
                stream=held.header.stream,
                modality="video",
                seq=seq,
                pts=held.header.pts,
                wall=held.header.wall,
                outputs={},
                infer_s=0.0,
            )
        )
    )


@pytest.mark.slow
def test_credit_caps_what_each_worker_holds_and_the_faster_one_gets_more() -> None:
    ctx = zmq.Context()
    sock = bind_server(ctx, zmq.ROUTER, "tcp://127.0.0.1:*")
    answered: list[int] = []
    disp = Dispatcher(
        sock,
        Metrics(CollectorRegistry()),
        1000,
        3,
        lambda r: answered.append(r.seq) is None,
        lambda h: None,
        lambda h, r: None,
    )
    fast = register(ctx, disp, "fast", capacity=2)
    slow = register(ctx, disp, "slow", capacity=3)  # never answers
    for seq in range(20):
        disp.enqueue(item(seq))

    disp.dispatch()
    got = {"fast": received_seqs(fast), "slow": received_seqs(slow)}
    assert (len(got["fast"]), len(got["slow"])) == (2, 3), "no worker is sent past its capacity"
    while disp.queued("vision"):
        for seq in got["fast"][-2:]:
            answer(fast, seq)
        target = len(answered) + 2
        assert wait_until(
            lambda n=target: disp.handle_incoming() or len(answered) == n,
            5,
            0.01,
        )
        disp.dispatch()
        more = received_seqs(fast)
        assert 0 < len(more) <= 2
        got["fast"] += more
        assert received_seqs(slow, wait_ms=0) == [], "the slow worker holds its 3 and no more"
    assert len(got["fast"]) == 17 and len(got["slow"]) == 3
    assert sorted(got["fast"] + got["slow"]) == list(range(20))
    for dealer in (fast, slow):
        dealer.close()
    sock.close()
    ctx.term()


def test_an_item_resent_after_its_worker_died_is_answered_once() -> None:
    """The hung worker wakes and answers after the item went to another: that late
    answer is discarded and counted, never used or counted as a result."""
    ctx = zmq.Context()
    sock = bind_server(ctx, zmq.ROUTER, "tcp://127.0.0.1:*")
    metrics = Metrics(CollectorRegistry())
    used: list[int] = []
    released: list[int] = []
    disp = Dispatcher(
        sock,
        metrics,
        100,  # heartbeat_ms: declared dead after 3 missed, 0.3 s
        3,
        lambda r: used.append(r.seq) is None,
        lambda h: released.append(h.header.seq),
        lambda h, r: None,
    )
    hung = register(ctx, disp, "hung", capacity=4)
    disp.enqueue(item(7))
    disp.dispatch()
    assert received_seqs(hung) == [7]
    other = register(ctx, disp, "other", capacity=4)  # joins after: "hung" keeps the item

    def hung_is_buried() -> bool:
        other.send(protocol.encode(protocol.Heartbeat(v=protocol.PROTOCOL_VERSION)))
        disp.handle_incoming()
        disp.tick(time.monotonic())
        return [p.name for p in disp.peers.values()] == ["other"]

    assert wait_until(hung_is_buried, 5, 0.05), "the silent worker was never declared dead"
    assert disp.queued("vision") == 1, "its unanswered item went back to the queue"
    disp.dispatch()
    assert received_seqs(other) == [7]

    answer(hung, 7)  # too late: it was declared dead
    answer(other, 7)
    assert wait_until(lambda: disp.handle_incoming() or len(used) == 1, 5, 0.01)
    time.sleep(0.1)
    disp.handle_incoming()
    sample = metrics.registry.get_sample_value
    assert used == [7] and released == [7]
    assert sample("tandem_results_total", {"kind": "vision"}) == 1
    assert sample("tandem_results_discarded_total", {"kind": "vision", "reason": "unknown"}) == 1
    for dealer in (hung, other):
        dealer.close()
    sock.close()
    ctx.term()


def test_every_message_of_an_unregistered_peer_is_counted_once() -> None:
    """A heartbeat from a peer that never registered (or was declared dead) is refused
    as unregistered; a result from it is discarded as unknown; neither goes uncounted."""
    ctx = zmq.Context()
    sock = bind_server(ctx, zmq.ROUTER, "tcp://127.0.0.1:*")
    metrics = Metrics(CollectorRegistry())
    disp = Dispatcher(sock, metrics, 1000, 3, lambda r: True, lambda h: None, lambda h, r: None)
    stranger = ctx.socket(zmq.DEALER)
    stranger.setsockopt(zmq.LINGER, 0)
    stranger.connect(disp.endpoint)
    for _ in range(3):
        stranger.send(protocol.encode(protocol.Heartbeat(v=protocol.PROTOCOL_VERSION)))
    result = protocol.Result(
        v=protocol.PROTOCOL_VERSION,
        stream="cam",
        modality="video",
        seq=1,
        pts=0.0,
        wall=1.0,
        outputs={},
        infer_s=0.0,
    )
    stranger.send(protocol.encode(result))

    def sample(name: str, labels: dict[str, str]) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    def counted() -> float:
        disp.handle_incoming()
        return sample(
            "tandem_messages_rejected_total", {"socket": "dispatch", "reason": "unregistered"}
        ) + sample("tandem_results_discarded_total", {"kind": "vision", "reason": "unknown"})

    try:
        assert wait_until(lambda: counted() >= 4, 5, 0.02)
        time.sleep(0.1)
        assert counted() == 4
        assert (
            sample(
                "tandem_messages_rejected_total", {"socket": "dispatch", "reason": "unregistered"}
            )
            == 3
        )
        assert not disp.peers
    finally:
        stranger.close()
        sock.close()
        ctx.term()
