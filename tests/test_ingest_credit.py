"""Credit between tandemd's ingest hub and an ingest process, with real sockets: credit
that could not be sent stays owed, and every failed send is counted."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import zmq
from prometheus_client import CollectorRegistry

from daemon.core.metrics import Metrics
from daemon.dispatch.peers import Held
from daemon.ingest.hub import IngestHub, bind_ingest
from daemon.wire import protocol

V = protocol.PROTOCOL_VERSION


def ingest_peer(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IDENTITY, b"cam")
    sock.connect(endpoint)
    return sock


def credits(sock: zmq.Socket[bytes], hub: IngestHub, want: int, timeout_s: float = 10.0) -> int:
    """The credit the peer received, once `want` came or `timeout_s` passed (the hub
    pumped meanwhile), and for 0.3 s more: nothing beyond what is owed may come."""
    total, deadline = 0, time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if total >= want:
            deadline = min(deadline, time.monotonic() + 0.3)
        hub.handle_incoming()
        hub.flush_credits()
        if sock.poll(50, zmq.POLLIN):
            msg, _ = protocol.decode(sock.recv_multipart())
            if isinstance(msg, protocol.Credit):
                total += msg.n
    return total


def item(seq: int) -> Held:
    header = protocol.VideoItem(
        v=V, stream="cam", seq=seq, pts=seq / 5, duration=0.2, wall=0.0, shape=(2, 2, 3)
    )
    return Held(header, b"\0" * 12, time.monotonic())


def hub_for(
    ctx: zmq.Context[zmq.Socket[bytes]],
    tmp_path: Path,
    metrics: Metrics,
    on_item: Callable[[Held], None] = lambda held: None,
) -> IngestHub:
    """A real hub on an ipc socket under `tmp_path`, callbacks ignored but `on_item`."""
    return IngestHub(
        bind_ingest(ctx, f"ipc://{tmp_path}/ingest.sock", 1 << 20),
        metrics,
        1 << 20,
        on_hello=lambda stream, msg: None,
        on_item=on_item,
        on_end=lambda stream, msg: None,
        on_state=lambda msg: None,
    )


def test_credit_not_sent_stays_owed_and_the_failure_is_counted(tmp_path: Path) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    metrics = Metrics(CollectorRegistry())
    hub = hub_for(ctx, tmp_path, metrics)
    hub.add_stream("cam", bound=4)
    peer = ingest_peer(ctx, hub.endpoint)
    try:
        hello = protocol.IngestHello(v=V, stream="cam", pid=os.getpid(), video=True, audio=False)
        peer.send(protocol.encode(hello))
        assert credits(peer, hub, 4) == 4  # the whole bound at hello
        hub.links["cam"].held = 3  # three items in tandemd...
        peer.close()  # ...when the ingest process's connection drops
        time.sleep(0.2)
        for seq in range(3):  # they are answered: three credits owed, none sendable
            hub.release(item(seq))
        hub.flush_credits()
        failed = metrics.registry.get_sample_value(
            "tandem_send_failures_total", {"socket": "ingest", "reason": "unreachable"}
        )
        assert failed == 1 and hub.links["cam"].credit_owed == 3
        # The same process reconnects (its identity again, no new hello): it gets them.
        peer = ingest_peer(ctx, hub.endpoint)
        peer.send(protocol.encode(protocol.IngestStats(v=V, stream="cam", counters={}, drops={})))
        assert credits(peer, hub, 3) == 3
        assert hub.links["cam"].credit_owed == 0
    finally:
        peer.close()
        hub.close()
        ctx.term()


def test_credit_goes_back_in_halves_of_the_bound_and_never_stalls(tmp_path: Path) -> None:
    """A credit message per answered item woke the ingest process once per item; owed
    credit now goes back once half the bound is owed, and an ingest process that spent
    its whole bound gets it all back as its items are answered."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    received: list[Held] = []
    hub = hub_for(ctx, tmp_path, Metrics(CollectorRegistry()), received.append)
    hub.add_stream("cam", bound=8)
    peer = ingest_peer(ctx, hub.endpoint)
    try:
        hello = protocol.IngestHello(v=V, stream="cam", pid=os.getpid(), video=True, audio=False)
        peer.send(protocol.encode(hello))
        assert credits(peer, hub, 8) == 8
        for seq in range(8):  # the ingest process spends its whole bound
            sent = item(seq)
            peer.send_multipart([protocol.encode(sent.header), sent.payload])
        deadline = time.monotonic() + 10
        while len(received) < 8 and time.monotonic() < deadline:
            hub.handle_incoming()
            time.sleep(0.01)
        assert len(received) == 8 and hub.links["cam"].held == 8
        for held in received[:3]:  # three answered: below half, nothing goes back yet
            hub.release(held)
        assert credits(peer, hub, 0, timeout_s=0.3) == 0
        hub.release(received[3])  # the fourth: half the bound goes back at once
        assert credits(peer, hub, 4) == 4
        for held in received[4:]:  # and the rest as the other half is answered
            hub.release(held)
        assert credits(peer, hub, 4) == 4
        assert hub.links["cam"].held == 0 and hub.links["cam"].credit_owed == 0
    finally:
        peer.close()
        hub.close()
        ctx.term()
