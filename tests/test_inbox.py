"""Reading a socket's waiting messages: all of them in order, bounded per turn."""

from __future__ import annotations

import zmq

from daemon.wire.inbox import waiting
from tests.conftest import wait_until


def test_reads_what_waits_in_order_at_most_limit_per_turn_and_leaves_the_rest() -> None:
    ctx = zmq.Context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    try:
        pull.bind("inproc://inbox-test")
        push.connect("inproc://inbox-test")
        for n in range(5):
            push.send_multipart([b"h%d" % n, b"payload"])
        assert wait_until(lambda: pull.poll(0, zmq.POLLIN) != 0, 5)
        first = [frames[0].bytes for frames in waiting(pull, limit=3)]
        assert first == [b"h0", b"h1", b"h2"]
        assert pull.poll(0, zmq.POLLIN)  # the rest keeps the socket readable for the loop
        rest = [frames for frames in waiting(pull, copy=True)]
        assert rest == [[b"h3", b"payload"], [b"h4", b"payload"]]
        assert list(waiting(pull)) == []  # nothing waiting: returns at once
    finally:
        pull.close(linger=0)
        push.close(linger=0)
        ctx.term()
