"""Reading what a socket holds now, without a system call per message.

`sock.poll(0)` before each receive costs a poll(2) per message; a non-blocking receive
until EAGAIN costs none while messages are waiting. The reads are bounded per turn so one
busy peer cannot hold a loop away from its other sockets and timers; what is left keeps
the socket readable for the loop's next poll.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import zmq

MAX_PER_TURN = 1024


def waiting(
    sock: zmq.Socket[Any], copy: bool = False, limit: int = MAX_PER_TURN
) -> Iterator[list[Any]]:
    """The messages `sock` holds now, oldest first, at most `limit` of them."""
    for _ in range(limit):
        try:
            yield sock.recv_multipart(zmq.NOBLOCK, copy=copy)
        except zmq.Again:
            return
