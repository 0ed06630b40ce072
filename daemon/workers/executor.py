"""Runs batches on a thread of its own, so the worker's socket loop keeps heartbeating
and gathering the next batch while a long forward runs (torch releases the GIL).

Only the loop thread touches the DEALER socket; this thread wakes the loop through an
inproc PAIR socket when a batch is done, so the loop polls one set of sockets and never
spins.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import zmq

In = TypeVar("In")
Out = TypeVar("Out")


class BatchThread(Generic[In, Out]):
    """One batch at a time: `submit`, then `take` once `signal` is readable."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], run: Callable[[In], Out]) -> None:
        self._run = run
        address = f"inproc://batch-thread-{id(self)}"
        self.signal = ctx.socket(zmq.PAIR)
        self.signal.setsockopt(zmq.LINGER, 0)
        self.signal.bind(address)
        self._notify = ctx.socket(zmq.PAIR)
        self._notify.setsockopt(zmq.LINGER, 0)
        self._notify.connect(address)
        self._todo: queue.Queue[In | None] = queue.Queue(maxsize=1)
        self._done: queue.Queue[Out | BaseException] = queue.Queue()
        self.busy = False
        self._thread = threading.Thread(target=self._loop, name="batches", daemon=True)
        self._thread.start()

    def submit(self, batch: In) -> None:
        assert not self.busy, "one batch at a time"
        self.busy = True
        self._todo.put(batch)

    def take(self) -> Out:
        """The finished batch's output (re-raises what the batch raised)."""
        self.signal.recv()
        result = self._done.get()
        self.busy = False
        if isinstance(result, BaseException):
            raise result
        return result

    def close(self) -> None:
        # Do not wait out a long batch: tandemd gives a stopping worker 2 s, and its
        # items are re-sent or counted anyway. The thread is a daemon.
        with contextlib.suppress(queue.Full):
            self._todo.put_nowait(None)
        self._thread.join(timeout=1.0)
        self.signal.close()
        self._notify.close()

    def _loop(self) -> None:
        while (batch := self._todo.get()) is not None:
            try:
                self._done.put(self._run(batch))
            except BaseException as exc:  # handed to the loop thread, which decides
                self._done.put(exc)
            self._notify.send(b"")
