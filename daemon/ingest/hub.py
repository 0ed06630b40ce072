"""tandemd's side of the ingest link: one ROUTER that every ingest process connects to.

Each stream may hold at most `bound` items in tandemd (queued or at a worker); the
ingest process gets one credit back for every item released, so memory in tandemd is
bounded per stream and a file stream is paced by the workers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import zmq

from daemon.core.metrics import Metrics
from daemon.dispatch.peers import Held
from daemon.runtime.logs import RATE_LIMITED
from daemon.wire import protocol
from daemon.wire.endpoints import send_to_peer, zmq_size_cap
from daemon.wire.inbox import waiting
from daemon.wire.vocabulary import STREAM_STATES

log = logging.getLogger("ingest")
# ingest_stats counter -> (Metrics attribute, labels after the stream's)
COUNTER_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "video_frames_decoded": ("frames_decoded", ()),
    "video_frames_sampled": ("frames_sampled", ()),
    "audio_chunks": ("audio_chunks", ()),
    "decode_errors": ("decode_errors", ()),
    "corrupt_packets": ("corrupt_packets", ()),
    "reconnects": ("reconnects", ()),
    "ts_jumps": ("discontinuities", ("jump",)),
    "ts_wraps": ("discontinuities", ("wrap",)),
    "format_changes": ("format_changes", ()),
}


@dataclass
class IngestLink:
    stream: str
    bound: int
    identity: bytes | None = None
    held: int = 0
    credit_owed: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)
    ended: str | None = None
    fps: float | None = None  # analysis fps tandemd asked for; None: the configured one
    last_heard: float = 0.0  # monotonic: its stats come every 0.5 s while its loop turns
    state: str = "starting"  # its last health state (daemon/wire/vocabulary.py STREAM_STATES)


def bind_ingest(
    ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, max_message_bytes: int
) -> zmq.Socket[bytes]:
    """The ROUTER every ingest process connects to, bound to `endpoint`."""
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, zmq_size_cap(max_message_bytes))
    # An unroutable peer is an error to count, not a message silently dropped.
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    # A stream's identity is its id: a restarted ingest process (or one that
    # reconnected) takes the route over, even before the old connection is reaped;
    # without this ZeroMQ ignores the newcomer and the stream stalls.
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError:
        sock.close()
        raise
    return sock


class IngestHub:
    def __init__(
        self,
        sock: zmq.Socket[bytes],
        metrics: Metrics,
        max_message_bytes: int,
        on_hello: Callable[[str, protocol.IngestHello], None],
        on_item: Callable[[Held], None],
        on_end: Callable[[str, protocol.IngestEnd], None],
        on_state: Callable[[protocol.IngestState], None],
    ) -> None:
        """`sock`: bound by `bind_ingest`."""
        self.sock = sock
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.metrics = metrics
        self.max_message_bytes = max_message_bytes
        self.links: dict[str, IngestLink] = {}
        self.on_hello = on_hello
        self.on_item = on_item
        self.on_end = on_end
        self.on_state = on_state
        self._send_failed = lambda reason: metrics.send_failures.labels("ingest", reason).inc()

    def add_stream(self, stream: str, bound: int) -> None:
        self.links[stream] = IngestLink(stream, bound)
        self.metrics.stream_up.labels(stream).set(0)
        self._set_state(stream, "starting")

    def release(self, held: Held) -> None:
        """An item of this stream left tandemd: the stream may send one more."""
        link = self.links.get(held.header.stream)
        if link is not None:
            link.held -= 1
            link.credit_owed += 1

    def flush_credits(self) -> None:
        """Send each stream the credit it is owed once it is half its bound; what could not
        be sent stays owed and goes with the next flush (a lost credit would stall a file
        stream for good).

        In halves, not one by one: a credit message per item cost a send (and a wake-up
        of the ingest process, which then decoded one item and slept again) per item. It
        cannot stall: an ingest process out of credit has the whole bound held in tandemd
        or owed, and what is held is released as it is answered, lost or expired, until
        half is owed. A stream that has credit left sends on meanwhile."""
        for link in self.links.values():
            if link.credit_owed >= max(1, link.bound // 2) and link.identity is not None:
                credit = protocol.Credit(v=protocol.PROTOCOL_VERSION, n=link.credit_owed)
                if send_to_peer(self.sock, link.identity, credit, self._send_failed):
                    link.credit_owed = 0

    def set_fps(self, stream: str, fps: float) -> None:
        """Ask the stream's ingest process to analyse at `fps` (kept across its restarts)."""
        link = self.links[stream]
        link.fps = fps
        if link.identity is not None:
            send_to_peer(
                self.sock,
                link.identity,
                protocol.IngestControl(v=protocol.PROTOCOL_VERSION, fps=fps),
                self._send_failed,
            )

    def silent(self, now: float, limit_s: float) -> list[str]:
        """Connected streams whose ingest process said nothing for `limit_s`: its main
        loop sends stats twice a second whatever its source does, so it is wedged."""
        return [
            link.stream
            for link in self.links.values()
            if link.identity is not None and link.ended is None and now - link.last_heard > limit_s
        ]

    def connected(self, stream: str) -> bool:
        """The stream's ingest process said hello (so it can be asked to stop)."""
        link = self.links.get(stream)
        return link is not None and link.identity is not None

    def forget(self, stream: str) -> None:
        self.links.pop(stream, None)

    def stop_all(self) -> None:
        for stream in self.links:
            self.stop(stream)

    def stop(self, stream: str) -> None:
        """Ask the stream's ingest process to stop: it ends with reason `stopped`."""
        link = self.links.get(stream)
        if link is not None and link.identity is not None:
            stop = protocol.Stop(v=protocol.PROTOCOL_VERSION)
            send_to_peer(self.sock, link.identity, stop, self._send_failed)

    def handle_incoming(self) -> None:
        for frames in waiting(self.sock):
            identity = frames[0].bytes
            link = self.links.get(identity.decode(errors="replace"))
            try:
                msg, payloads = protocol.decode(frames[1:], self.max_message_bytes)
                if link is None or getattr(msg, "stream", link.stream) != link.stream:
                    raise protocol.ProtocolError("unknown_stream", f"from {identity!r}")
            except protocol.ProtocolError as exc:
                self.metrics.rejected.labels("ingest", exc.reason).inc()
                log.warning(
                    "dropped a message from ingest peer %r: %s", identity, exc, extra=RATE_LIMITED
                )
                continue
            self._on_message(link, identity, msg, payloads)

    def close(self) -> None:
        self.sock.close()

    def _on_message(
        self, link: IngestLink, identity: bytes, msg: protocol.Message, payloads: list[zmq.Frame]
    ) -> None:
        link.last_heard = time.monotonic()
        if isinstance(msg, protocol.VideoItem | protocol.AudioItem):
            link.held += 1
            self.metrics.items_received.labels(link.stream, msg.type).inc()
            self.on_item(Held(msg, payloads[0], time.monotonic()))
        elif isinstance(msg, protocol.IngestStats):
            self._on_stats(link, msg)
        elif isinstance(msg, protocol.IngestState):
            self.metrics.stream_up.labels(link.stream).set(1 if msg.state == "running" else 0)
            self.metrics.stream_transitions.labels(link.stream, msg.state).inc()
            self._set_state(link.stream, msg.state)
            self.on_state(msg)
        elif isinstance(msg, protocol.IngestHello):
            self._on_hello(link, identity, msg)
        elif isinstance(msg, protocol.IngestEnd):
            link.ended = msg.reason
            self.metrics.stream_up.labels(link.stream).set(0)
            self.on_end(link.stream, msg)

    def _set_state(self, stream: str, state: str) -> None:
        link = self.links.get(stream)
        if link is not None:
            link.state = state
        for name in STREAM_STATES:
            self.metrics.stream_state.labels(stream, name).set(1 if name == state else 0)

    def _on_hello(self, link: IngestLink, identity: bytes, msg: protocol.IngestHello) -> None:
        # A new ingest process for the stream (first start or restart): counters restart.
        # It is up once it reports `running`.
        link.identity = identity
        link.counters, link.drops, link.ended = {}, {}, None
        link.credit_owed = max(0, link.bound - link.held)
        self.on_hello(link.stream, msg)
        self.flush_credits()
        if link.fps is not None:  # a restarted process starts at the configured rate
            send_to_peer(
                self.sock,
                identity,
                protocol.IngestControl(v=protocol.PROTOCOL_VERSION, fps=link.fps),
                self._send_failed,
            )

    def _on_stats(self, link: IngestLink, msg: protocol.IngestStats) -> None:
        for name, (metric, labels) in COUNTER_METRICS.items():
            delta = msg.counters.get(name, 0) - link.counters.get(name, 0)
            if delta > 0:
                getattr(self.metrics, metric).labels(link.stream, *labels).inc(delta)
        for key, total in msg.drops.items():
            delta = total - link.drops.get(key, 0)
            modality, _, reason = key.partition(":")
            if delta > 0 and modality in ("video", "audio") and reason:
                self.metrics.dropped.labels(link.stream, modality, reason).inc(delta)
        link.counters, link.drops = dict(msg.counters), dict(msg.drops)
