"""The worker-facing ROUTER socket: options set before bind, errors naming the key."""

from __future__ import annotations

import zmq


def bind_router(
    ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, max_bytes: int
) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, max_bytes)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError:
        sock.close()
        raise
    return sock
