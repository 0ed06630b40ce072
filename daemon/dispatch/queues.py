"""Items waiting in tandemd for a worker: one FIFO per stream, served round-robin."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterator

from daemon.dispatch.peers import Held


class StreamQueues:
    """FIFOs per stream for one worker kind. `pop_next` rotates across streams so one
    busy stream cannot starve the others; items keep their order within a stream."""

    def __init__(self) -> None:
        self._queues: OrderedDict[str, deque[Held]] = OrderedDict()

    def push(self, held: Held) -> None:
        self._queue(held.header.stream).append(held)

    def push_front(self, held: Held) -> None:
        """Put an item back first in its stream (its worker died before answering)."""
        queue = self._queue(held.header.stream)
        queue.appendleft(held)
        # Keep the stream's order by seq: several items of a dead worker come back.
        if len(queue) > 1 and queue[0].header.seq > queue[1].header.seq:
            ordered = sorted(queue, key=lambda h: h.header.seq)
            queue.clear()
            queue.extend(ordered)

    def pop_next(self) -> Held | None:
        for stream, queue in self._queues.items():
            if queue:
                self._queues.move_to_end(stream)  # next call starts with another stream
                return queue.popleft()
        return None

    def expire(self, now_wall: float, on_expired: Callable[[Held], None]) -> None:
        """Remove items past their deadline. Queues are in capture order, so only the
        head of each can be the oldest."""
        for queue in self._queues.values():
            while queue and queue[0].deadline is not None and queue[0].deadline < now_wall:
                on_expired(queue.popleft())

    def drain(self) -> Iterator[Held]:
        for queue in self._queues.values():
            while queue:
                yield queue.popleft()

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def _queue(self, stream: str) -> deque[Held]:
        queue = self._queues.get(stream)
        if queue is None:
            queue = self._queues[stream] = deque()
        return queue
