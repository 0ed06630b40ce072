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
_NOBLOCK = int(zmq.NOBLOCK)  # a plain int: no enum arithmetic per receive


def waiting(
    sock: zmq.Socket[Any], copy: bool = False, limit: int = MAX_PER_TURN
) -> Iterator[list[Any]]:
    """The messages `sock` holds now, oldest first, at most `limit` of them."""
    for _ in range(limit):
        try:
            if copy:
                yield sock.recv_multipart(_NOBLOCK)
            else:
                yield _frames(sock)
        except zmq.Again:
            return


def _frames(sock: zmq.Socket[Any]) -> list[zmq.Frame]:
    # A received frame knows whether more follow: no getsockopt(RCVMORE) per part, as
    # pyzmq's recv_multipart does. A message's parts arrive together, so only the first
    # receive can raise Again.
    frame = sock.recv(_NOBLOCK, copy=False)
    frames = [frame]
    while frame.more:
        frame = sock.recv(_NOBLOCK, copy=False)
        frames.append(frame)
    return frames
