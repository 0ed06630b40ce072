"""tandemd's side of the worker link: owns the ROUTER socket, the workers and the queues.

A worker registers with its capacity; tandemd never has more than that many of its items
out at once, so faster workers, which free their credit sooner, get more. Queues are per
stream and served round-robin. A stream's items go to the worker that had its previous
item when that worker has credit (stateful analyzers see consecutive frames). A worker
silent for `liveness` heartbeats is dead: its items go back to the front of their queues
for another worker. Items past their stream's latency objective are given up, counted,
and reported to fusion so no window waits for them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import zmq
from prometheus_client import Histogram

from daemon.core.metrics import Metrics
from daemon.dispatch.peers import Held, WorkerPeer
from daemon.dispatch.queues import StreamQueues
from daemon.runtime.logs import RATE_LIMITED
from daemon.wire import protocol
from daemon.wire.endpoints import send_to_peer
from daemon.wire.inbox import waiting
from daemon.wire.vocabulary import KIND_OF, KINDS, Kind

log = logging.getLogger("dispatch")
_SNDMORE = int(zmq.SNDMORE)
# The first part never waits: with ROUTER_MANDATORY a blocking send to a peer whose pipe
# is at ZeroMQ's high-water mark (a stopped worker with a large capacity) blocks the loop.
_FIRST_PART = int(zmq.SNDMORE | zmq.NOBLOCK)


class Dispatcher:
    def __init__(
        self,
        sock: zmq.Socket[bytes],
        metrics: Metrics,
        heartbeat_ms: int,
        liveness: int,
        on_result: Callable[[protocol.Result], bool],
        on_released: Callable[[Held], None],
        on_lost: Callable[[Held, str], None],
        on_dead_child: Callable[[str], None] = lambda child: None,
        max_message_bytes: int | None = None,
    ) -> None:
        self.sock = sock
        self.max_message_bytes = max_message_bytes
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.metrics = metrics
        self.heartbeat_s = heartbeat_ms / 1000
        self.liveness = liveness
        self.on_result = on_result
        self.on_released = on_released
        self.on_lost = on_lost
        self.on_dead_child = on_dead_child  # a local worker declared dead: kill its process
        self._send_failed = lambda reason: metrics.send_failures.labels("dispatch", reason).inc()
        self.peers: dict[bytes, WorkerPeer] = {}
        self.queues = {kind: StreamQueues() for kind in KINDS}
        self._affinity: dict[tuple[str, str], bytes] = {}  # (kind, stream) -> worker
        self._last_beat = 0.0
        # Per-kind series looked up once: `labels()` on every item costs more than the send.
        self._dispatched = {k: metrics.items_dispatched.labels(k) for k in KINDS}
        self._answered = {k: metrics.results.labels(k) for k in KINDS}
        # Per stream, filled as streams appear (their series are never removed).
        self._queue_latency: dict[str, Histogram] = {}

    # -- state ---------------------------------------------------------------------
    def enqueue(self, held: Held) -> None:
        self.queues[KIND_OF[held.header.type]].push(held)

    def queued(self, kind: Kind) -> int:
        return len(self.queues[kind])

    def inflight(self, kind: Kind | None = None) -> int:
        return sum(len(p.inflight) for p in self.peers.values() if kind in (None, p.kind))

    def workers(self, kind: Kind) -> int:
        return sum(1 for p in self.peers.values() if p.kind == kind)

    # -- loop hooks ----------------------------------------------------------------
    def handle_incoming(self) -> None:
        for frames in waiting(self.sock):
            identity = frames[0].bytes
            try:
                msg, _ = protocol.decode(frames[1:], self.max_message_bytes)
            except protocol.ProtocolError as exc:
                self._reject(identity, exc)
                continue
            self._on_message(identity, msg)

    def dispatch(self) -> None:
        """Send queued items to workers with credit."""
        for kind in KINDS:
            queue = self.queues[kind]
            peers = [p for p in self.peers.values() if p.kind == kind and p.credit > 0]
            sent = 0
            while peers:
                held = queue.pop_next()
                if held is None:
                    break
                peer = self._choose(kind, held.header.stream, peers)
                if self._send_item(peer, held):
                    sent += 1
                    if peer.credit <= 0:
                        peers.remove(peer)
                else:  # a peer that vanished under us is forgotten: not to be chosen again
                    peers.remove(peer)
            if sent:  # counted once per call: the counter's lock costs about as much as a send
                self._dispatched[kind].inc(sent)

    def tick(self, now: float) -> None:
        """Heartbeat the workers, bury the silent ones, give up items past deadline."""
        if now - self._last_beat >= self.heartbeat_s:
            self._last_beat = now
            for peer in list(self.peers.values()):
                send_to_peer(
                    self.sock,
                    peer.identity,
                    protocol.Heartbeat(v=protocol.PROTOCOL_VERSION),
                    self._send_failed,
                )
        for peer in list(self.peers.values()):
            if now - peer.last_heard > self.heartbeat_s * self.liveness:
                log.warning(
                    "worker %s (%s) missed %d heartbeats: declared dead, %d items re-queued",
                    peer.name,
                    peer.kind,
                    self.liveness,
                    len(peer.inflight),
                )
                self.metrics.worker_deaths.labels(peer.kind).inc()
                self._forget(peer)
                if peer.child is not None:
                    # Wedged, not gone: it holds its memory (a GPU's) until killed.
                    self.on_dead_child(peer.child)
        wall = time.time()
        for queue in self.queues.values():
            queue.expire(wall, self._expired)

    def forget_stream(self, stream: str) -> None:
        """A stream removed by reload: drop what the dispatcher keeps of it (its series
        are removed from the registry, so a kept child would count into nothing)."""
        self._queue_latency.pop(stream, None)
        for kind in KINDS:
            self._affinity.pop((kind, stream), None)

    def forget_child(self, child: str) -> None:
        """A local worker's process exited: re-queue its items at once."""
        for peer in list(self.peers.values()):
            if peer.child == child:
                log.warning("worker %s exited: %d items re-queued", peer.name, len(peer.inflight))
                self.metrics.worker_deaths.labels(peer.kind).inc()
                self._forget(peer)

    def give_up_all(self, reason: str) -> None:
        """Report everything still held as lost (shutdown with no worker left)."""
        for kind in KINDS:
            for held in self.queues[kind].drain():
                self.on_lost(held, reason)
        for peer in self.peers.values():
            for held in peer.inflight.values():
                self.on_lost(held, reason)
            peer.inflight.clear()

    # -- internals -----------------------------------------------------------------
    def _choose(self, kind: Kind, stream: str, peers: list[WorkerPeer]) -> WorkerPeer:
        last = self._affinity.get((kind, stream))
        for peer in peers:
            if peer.identity == last:
                return peer
        return max(peers, key=lambda p: p.credit)

    def _on_message(self, identity: bytes, msg: protocol.Message) -> None:
        if isinstance(msg, protocol.Register):
            self._register(identity, msg)
            return
        peer = self.peers.get(identity)
        if peer is None:
            # Not registered (declared dead, or tandemd restarted): it notices our silence
            # and registers again. Its late answers are not used; anything else it sends
            # (a heartbeat) is refused as unregistered: every message is counted once.
            results = _results(msg)
            for result in results:
                self.metrics.results_discarded.labels(KIND_OF[result.modality], "unknown").inc()
            if not results:
                self._reject(identity, protocol.ProtocolError("unregistered", msg.type))
            return
        peer.last_heard = time.monotonic()
        if isinstance(msg, protocol.WorkerStats):  # exported as the worker's own figures
            self.metrics.worker_figures.update(peer.name, msg)
            return
        if results := _results(msg):  # a `results` message is never empty
            answered = sum(self._on_result(peer, result) for result in results)
            if answered:  # counted once per message, as items_dispatched is per call
                self._answered[peer.kind].inc(answered)
        elif not isinstance(msg, protocol.Heartbeat):
            self._reject(identity, protocol.ProtocolError("unexpected", msg.type))

    def _register(self, identity: bytes, msg: protocol.Register) -> None:
        old = self.peers.get(identity)
        if old is not None:
            self._forget(old)
        self.peers[identity] = WorkerPeer(
            identity, msg.kind, msg.name, msg.capacity, msg.analyzers, time.monotonic(), msg.child
        )
        self.metrics.workers.labels(msg.kind).set(self.workers(msg.kind))
        self.metrics.worker_figures.registered(msg.name, msg.kind)
        log.info(
            "worker %s registered: %s, capacity %d, analyzers %s",
            msg.name,
            msg.kind,
            msg.capacity,
            ",".join(msg.analyzers),
        )
        send_to_peer(
            self.sock,
            identity,
            protocol.Welcome(
                v=protocol.PROTOCOL_VERSION,
                heartbeat_ms=int(self.heartbeat_s * 1000),
                liveness=self.liveness,
            ),
            self._send_failed,
        )

    def _on_result(self, peer: WorkerPeer, result: protocol.Result) -> bool:
        """Whether the answer was used (fusion took it in time)."""
        held = peer.inflight.pop((result.stream, result.modality, result.seq), None)
        if held is None:
            self.metrics.results_discarded.labels(peer.kind, "unknown").inc()
            return False
        used = self.on_result(result)
        if not used:
            self.metrics.results_discarded.labels(peer.kind, "late").inc()
        self.on_released(held)
        return used

    def _forget(self, peer: WorkerPeer) -> None:
        """Drop a worker; its unanswered items go back to the front of their queues."""
        del self.peers[peer.identity]
        for held in peer.inflight.values():
            self.queues[peer.kind].push_front(held)
        peer.inflight.clear()
        self.metrics.workers.labels(peer.kind).set(self.workers(peer.kind))
        self.metrics.worker_figures.forget(peer.name)

    def _expired(self, held: Held) -> None:
        self.on_lost(held, "stale" if held.sends == 0 else "worker_dead")

    def _send_item(self, peer: WorkerPeer, held: Held) -> bool:
        """Send an item; False (item re-queued) when the peer takes nothing now: its pipe
        is full, or it is gone (then it is forgotten)."""
        try:
            # Part by part with int flags: send_multipart's per-part checks and enum
            # arithmetic cost more than the sends. Only the first part can fail
            # (EAGAIN, EHOSTUNREACH), and then nothing of the message was queued.
            self.sock.send(peer.identity, _FIRST_PART, copy=False)
            self.sock.send(protocol.encode(held.header), _SNDMORE, copy=False)
            self.sock.send(held.payload, 0, copy=False)
        except zmq.Again:  # its pipe is full: credit is not spent, heartbeats decide
            self.queues[peer.kind].push_front(held)
            return False
        except zmq.ZMQError as exc:  # EHOSTUNREACH: the peer vanished under us
            log.warning("worker %s unreachable (%s)", peer.name, exc)
            self.queues[peer.kind].push_front(held)
            self._forget(peer)
            return False
        held.sends += 1
        wait_s = time.monotonic() - held.received_at  # stage "queue" (daemon/core/stages.py)
        stream = held.header.stream
        latency = self._queue_latency.get(stream)
        if latency is None:
            latency = self._queue_latency[stream] = self.metrics.stage_latency.labels(
                stream, "queue"
            )
        latency.observe(wait_s)
        peer.inflight[held.key] = held
        self._affinity[(peer.kind, stream)] = peer.identity
        return True

    def _reject(self, identity: bytes, exc: protocol.ProtocolError) -> None:
        self.metrics.rejected.labels("dispatch", exc.reason).inc()
        log.warning(
            "dropped a message from worker peer %s: %s", identity.hex(), exc, extra=RATE_LIMITED
        )
        if exc.reason == "version":
            send_to_peer(
                self.sock,
                identity,
                protocol.Refuse(
                    v=protocol.PROTOCOL_VERSION, reason=f"{exc.detail}; upgrade the worker"
                ),
                self._send_failed,
            )


def _results(msg: protocol.Message) -> list[protocol.Result]:
    """The answers a message carries: a batch's, one, or none."""
    if isinstance(msg, protocol.Results):
        return msg.results
    return [msg] if isinstance(msg, protocol.Result) else []
