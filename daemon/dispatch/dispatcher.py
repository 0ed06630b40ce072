"""tandemd's side of the worker link: owns the ROUTER socket and the per-stream queues.

A worker registers with its capacity; tandemd never has more than that many of its items
out at once. Queues are per stream, served round-robin, so one busy stream cannot starve
the others. A worker silent for `liveness` heartbeats is dead: its items go back to the
front of their queues for another worker.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

import zmq

from daemon import protocol
from daemon.dispatch.peers import Held, WorkerPeer
from daemon.logs import RATE_LIMITED
from daemon.metrics import Metrics

log = logging.getLogger("dispatch")
KIND_OF = {"video": "vision", "audio": "audio"}
KINDS = ("vision", "audio")


class Dispatcher:
    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        endpoint: str,
        metrics: Metrics,
        heartbeat_ms: int,
        liveness: int,
        max_message_bytes: int,
        on_result: Callable[[protocol.Result], bool],
        on_released: Callable[[Held], None],
    ) -> None:
        self.metrics = metrics
        self.heartbeat_s = heartbeat_ms / 1000
        self.liveness = liveness
        self.on_result = on_result
        self.on_released = on_released
        self.peers: dict[bytes, WorkerPeer] = {}
        self.queues: dict[str, dict[str, deque[Held]]] = {k: {} for k in KINDS}
        self._last_beat = 0.0
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.sock.bind(endpoint)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)

    # -- queues -------------------------------------------------------------------
    def enqueue(self, held: Held) -> None:
        kind = KIND_OF[held.header.type]
        self.queues[kind].setdefault(held.header.stream, deque()).append(held)

    def queued(self, kind: str) -> int:
        return sum(len(q) for q in self.queues[kind].values())

    def inflight(self, kind: str | None = None) -> int:
        return sum(len(p.inflight) for p in self.peers.values() if kind in (None, p.kind))

    def workers(self, kind: str) -> int:
        return sum(1 for p in self.peers.values() if p.kind == kind)

    # -- socket -------------------------------------------------------------------
    def handle_incoming(self) -> None:
        while self.sock.poll(0, zmq.POLLIN):
            frames = self.sock.recv_multipart(copy=False)
            identity = frames[0].bytes
            try:
                msg, _ = protocol.decode(frames[1:])
            except protocol.ProtocolError as exc:
                self._reject(identity, exc)
                continue
            self._on_message(identity, msg)

    def dispatch(self) -> None:
        """Send queued items to workers with credit, round-robin over streams."""
        for kind in KINDS:
            streams = self.queues[kind]
            peers = [p for p in self.peers.values() if p.kind == kind and p.credit > 0]
            while peers and any(streams.values()):
                for stream in list(streams):
                    queue = streams[stream]
                    if not queue or not peers:
                        continue
                    peer = max(peers, key=lambda p: p.credit)
                    self._send_item(peer, queue.popleft())
                    if peer.credit <= 0:
                        peers.remove(peer)
            self.metrics.queued.labels(kind).set(self.queued(kind))
            self.metrics.inflight.labels(kind).set(self.inflight(kind))

    def tick(self, now: float) -> None:
        """Heartbeat the workers and bury the silent ones."""
        if now - self._last_beat >= self.heartbeat_s:
            self._last_beat = now
            for peer in list(self.peers.values()):
                self._send(peer.identity, protocol.Heartbeat(v=protocol.PROTOCOL_VERSION))
        for peer in list(self.peers.values()):
            if now - peer.last_heard > self.heartbeat_s * self.liveness:
                log.warning(
                    "worker %s (%s) missed %d heartbeats: declared dead",
                    peer.name,
                    peer.kind,
                    self.liveness,
                )
                self.metrics.worker_deaths.labels(peer.kind).inc()
                self._forget(peer)

    def stop_workers(self) -> None:
        for peer in self.peers.values():
            self._send(peer.identity, protocol.Stop(v=protocol.PROTOCOL_VERSION))

    def close(self) -> None:
        self.sock.close()

    # -- internals ----------------------------------------------------------------
    def _on_message(self, identity: bytes, msg: protocol.Message) -> None:
        peer = self.peers.get(identity)
        if isinstance(msg, protocol.Register):
            self._register(identity, msg)
            return
        if peer is None:
            # Not registered (tandemd restarted, or the peer was declared dead): it will
            # notice our silence and register again.
            return
        peer.last_heard = time.monotonic()
        if isinstance(msg, protocol.Result):
            self._on_result(peer, msg)
        elif not isinstance(msg, protocol.Heartbeat):
            self._reject(identity, protocol.ProtocolError("unexpected", msg.type))

    def _register(self, identity: bytes, msg: protocol.Register) -> None:
        old = self.peers.get(identity)
        if old is not None:
            self._forget(old)
        self.peers[identity] = WorkerPeer(
            identity, msg.kind, msg.name, msg.capacity, msg.analyzers, time.monotonic()
        )
        self.metrics.workers.labels(msg.kind).set(self.workers(msg.kind))
        log.info(
            "worker %s registered: %s, capacity %d, analyzers %s",
            msg.name,
            msg.kind,
            msg.capacity,
            ",".join(msg.analyzers),
        )
        self._send(
            identity,
            protocol.Welcome(
                v=protocol.PROTOCOL_VERSION,
                heartbeat_ms=int(self.heartbeat_s * 1000),
                liveness=self.liveness,
            ),
        )

    def _on_result(self, peer: WorkerPeer, result: protocol.Result) -> None:
        held = peer.inflight.pop((result.stream, result.modality, result.seq), None)
        if held is None:
            self.metrics.results_discarded.labels(peer.kind, "unknown").inc()
            return
        if self.on_result(result):
            self.metrics.results.labels(peer.kind).inc()
        else:
            self.metrics.results_discarded.labels(peer.kind, "late").inc()
        self.on_released(held)

    def _forget(self, peer: WorkerPeer) -> None:
        """Drop a worker; its unanswered items go back to the front of their queues."""
        del self.peers[peer.identity]
        for held in sorted(peer.inflight.values(), key=lambda h: -h.header.seq):
            self.queues[peer.kind].setdefault(held.header.stream, deque()).appendleft(held)
        peer.inflight.clear()
        self.metrics.workers.labels(peer.kind).set(self.workers(peer.kind))

    def _send_item(self, peer: WorkerPeer, held: Held) -> None:
        try:
            self.sock.send_multipart(
                [peer.identity, protocol.encode(held.header), held.payload], copy=False
            )
        except zmq.ZMQError as exc:  # EHOSTUNREACH: the peer vanished under us
            log.warning("worker %s unreachable (%s)", peer.name, exc)
            self.queues[peer.kind].setdefault(held.header.stream, deque()).appendleft(held)
            self._forget(peer)
            return
        peer.inflight[held.key] = held
        self.metrics.items_dispatched.labels(peer.kind).inc()

    def _send(self, identity: bytes, msg: protocol.BaseMessage) -> None:
        # The peer may be gone (ROUTER_MANDATORY); heartbeat expiry cleans up after it.
        with contextlib.suppress(zmq.ZMQError):
            self.sock.send_multipart([identity, protocol.encode(msg)])

    def _reject(self, identity: bytes, exc: protocol.ProtocolError) -> None:
        self.metrics.rejected.labels("workers", exc.reason).inc()
        log.warning(
            "dropped a message from worker peer %s: %s", identity.hex(), exc, extra=RATE_LIMITED
        )
        if exc.reason == "version":
            self._send(
                identity,
                protocol.Refuse(
                    v=protocol.PROTOCOL_VERSION,
                    reason=f"{exc.detail}; upgrade the worker",
                ),
            )
