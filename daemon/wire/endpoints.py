"""Server sockets of tandemd: options and security set before bind, and a monitor that
counts refused handshakes (wrong key, wrong mechanism) per socket."""

from __future__ import annotations

import logging
from collections.abc import Callable

import zmq
from zmq.utils.monitor import recv_monitor_message

from daemon.core.metrics import Metrics
from daemon.runtime.logs import rate_limited
from daemon.wire import protocol
from daemon.wire.security import secure_server

log = logging.getLogger("security")
HANDSHAKE_FAILURES = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "unauthorized",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "handshake",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake",
}


def zmq_size_cap(max_message_bytes: int) -> int:
    """ZeroMQ's own message cap, set above tandem's: a message between the two reaches
    tandemd, which refuses it and counts it once as `size`. Past ZeroMQ's cap libzmq
    closes the connection and its monitor says only "disconnected", so such a message
    could not be told from a peer leaving; the margin bounds what one costs in memory."""
    return 2 * max_message_bytes


def bind_server(
    ctx: zmq.Context[zmq.Socket[bytes]],
    kind: int,
    endpoint: str,
    max_bytes: int | None = None,
    curve_secret_key: str = "",
    options: dict[int, int] | None = None,
) -> zmq.Socket[bytes]:
    """A socket of `kind` bound to `endpoint`, every option set before the bind."""
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    for option, value in (options or {}).items():
        sock.setsockopt(option, value)
    if max_bytes is not None:
        sock.setsockopt(zmq.MAXMSGSIZE, zmq_size_cap(max_bytes))
    if kind == zmq.ROUTER:
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    try:
        if curve_secret_key:
            secure_server(sock, curve_secret_key)
        sock.bind(endpoint)
    except Exception:
        sock.close()
        raise
    return sock


# Why a send to a ROUTER peer failed: tandem_send_failures_total{socket, reason}.
SEND_FAILURES: dict[int, str] = {zmq.EHOSTUNREACH: "unreachable", zmq.EAGAIN: "would_block"}
SEND_FAILURE_REASONS = ("unreachable", "would_block", "error")


def send_to_peer(
    sock: zmq.Socket[bytes],
    identity: bytes,
    msg: protocol.BaseMessage,
    failed: Callable[[str], None] = lambda reason: None,
) -> bool:
    """A message to one peer of a ROUTER with ROUTER_MANDATORY, never waiting for it: the
    peer may be gone or its pipe full. False (and `failed(reason)`, which counts it) when
    it was not sent; the caller decides what stays owed, heartbeat expiry the rest."""
    try:
        sock.send_multipart([identity, protocol.encode(msg)], zmq.NOBLOCK)
    except zmq.ZMQError as exc:
        failed(SEND_FAILURES.get(exc.errno or 0, "error"))
        return False
    return True


class HandshakeMonitor:
    """Counts handshakes a socket refused in tandem_messages_rejected_total."""

    def __init__(self, sock: zmq.Socket[bytes], name: str, metrics: Metrics) -> None:
        self.name = name
        self.metrics = metrics
        events = (
            zmq.EVENT_HANDSHAKE_FAILED_AUTH
            | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
            | zmq.EVENT_DISCONNECTED
        )
        self.sock = sock.get_monitor_socket(events)

    def handle_incoming(self) -> None:
        while self.sock.poll(0, zmq.POLLIN):
            event = recv_monitor_message(self.sock)
            if event["event"] == zmq.EVENT_DISCONNECTED:
                # Includes ZeroMQ closing a peer that sent over twice max_message_bytes.
                self.metrics.disconnects.labels(self.name).inc()
                continue
            reason = HANDSHAKE_FAILURES.get(zmq.Event(event["event"]), "handshake")
            self.metrics.rejected.labels(self.name, reason).inc()
            log.warning(
                "%s socket refused a peer's handshake: %s (code %s)",
                self.name,
                reason,
                event["value"],
                extra=rate_limited(self.name, reason),  # per reason: one never hides another
            )

    def close(self, monitored: zmq.Socket[bytes]) -> None:
        monitored.disable_monitor()
        self.sock.close()
