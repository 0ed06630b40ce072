"""Subscriber API: iterate tandem's published records with a topic filter.

    from daemon.publishing.subscriber import Subscriber
    with Subscriber("tcp://127.0.0.1:7701", topics=["fused."]) as sub:
        for topic, record in sub.records(timeout_s=5):
            print(topic, record["window"])

ZeroMQ reconnects by itself when tandemd restarts; records published while nobody was
connected are not replayed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import zmq


class Subscriber:
    def __init__(self, endpoint: str, topics: list[str] | None = None) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 100000)
        for topic in topics or [""]:
            self.sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self.sock.connect(endpoint)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def records(self, timeout_s: float | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield (topic, record); stop after `timeout_s` without a message (None: never)."""
        while True:
            wait_ms = None if timeout_s is None else int(timeout_s * 1000)
            if not self.sock.poll(wait_ms, zmq.POLLIN):
                return
            frames = self.sock.recv_multipart()
            if len(frames) != 2:
                continue
            try:
                record = json.loads(frames[1])
            except ValueError:
                continue
            yield frames[0].decode(errors="replace"), record

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


def wait_for(sub: Subscriber, count: int, timeout_s: float) -> list[tuple[str, dict[str, Any]]]:
    """Collect `count` records or whatever arrived within `timeout_s`."""
    out: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for item in sub.records(timeout_s=left):
            out.append(item)
            break
        else:
            break
    return out
