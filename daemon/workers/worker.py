"""A worker process: owns its lifecycle (connect, register, serve, reconnect, stop).

It holds at most `capacity` items (tandemd never sends more), gathers them into batches
(up to `max_batch` items or `max_wait_ms` after the oldest arrived, whichever comes
first), runs each batch on a thread of its own while this loop keeps heartbeating and
gathering, answers each item with one result, and re-registers by itself when tandemd
goes silent. A batch whose analyzers ran quickly the last few times runs on this loop
instead: for a short batch, waking the batch thread and taking the answers back costs
more than the batch itself, and a stall that short cannot cost a heartbeat. A batch only
fills when `capacity >= max_batch`; with twice that, the next batch gathers while the
current one runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import FrameType
from typing import Any, NamedTuple

import msgspec
import numpy as np
import zmq

from daemon.wire import protocol, vocabulary
from daemon.wire.inbox import waiting
from daemon.wire.security import secure_client
from daemon.wire.vocabulary import Kind
from daemon.workers.analyzers import Modality, WorkItem
from daemon.workers.batching import Answer, BatchRunner
from daemon.workers.executor import BatchThread

log = logging.getLogger("worker")
EXIT_REFUSED = 2
INLINE_MAX_S = 0.02  # a batch this short can run on the loop thread (heartbeats are >= 0.1 s)
INLINE_AFTER = 8  # ...once the last this many batches of the same analyzers were that short


@dataclass(frozen=True)
class BatchPolicy:
    max_batch: int = 1
    max_wait_ms: float = 0.0


class Pending(NamedTuple):  # a tuple: built per item, cheaper than a frozen dataclass
    header: protocol.VideoItem | protocol.AudioItem
    payload: Any  # zmq.Frame: the item's tensor reads straight from its buffer
    arrived: float


Batch = list[Pending]


class Worker:
    def __init__(
        self,
        endpoint: str,
        kind: str,
        runner: BatchRunner,
        capacity: int,
        heartbeat_ms: int = 1000,
        liveness: int = 3,
        batching: BatchPolicy | None = None,
        child: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.child = child  # tandemd's name for this process, when tandemd started it
        self.kind: Kind = vocabulary.kind(kind)
        self.modality: Modality = vocabulary.modality_of(kind)
        self.runner = runner
        self.capacity = capacity
        self.batching = batching or BatchPolicy()
        self.heartbeat_s = heartbeat_ms / 1000
        self.liveness = liveness
        self.name = f"{socket.gethostname()}:{os.getpid()}:{kind}"
        self.stopping = False
        self.welcomed = False
        self.curve: tuple[str, str] | None = None  # (server public key file, our secret key file)
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._pending: deque[Pending] = deque()
        self._batches: BatchThread[Batch, tuple[Batch, list[Answer], float]] | None = None
        # Seconds of the latest batches, per set of analyzers that ran (on-demand analyzers
        # switch on and off per stream, and a batch with a heavy one is not a short batch).
        self._recent: dict[frozenset[str], deque[float]] = {}

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        self.stopping = True

    def run(self) -> int:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        self._batches = BatchThread(self.ctx, self._run_batch)
        try:
            while not self.stopping:
                code = self._session()
                if code is not None:
                    return code
                if self.stopping:  # asked to stop while it waited for a silent tandemd
                    break
                log.warning("tandemd at %s went silent; registering again", self.endpoint)
            return 0
        finally:
            self._batches.close()
            self.ctx.term()

    def _session(self) -> int | None:
        """One registration: returns an exit code, or None to reconnect."""
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, 256 * 1024 * 1024)
        if self.curve is not None:
            secure_client(sock, *self.curve)
        sock.connect(self.endpoint)
        self._pending.clear()
        self.welcomed = False
        try:
            return self._serve(sock)
        finally:
            sock.close()

    def _serve(self, sock: zmq.Socket[bytes]) -> int | None:
        assert self._batches is not None
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._batches.signal, zmq.POLLIN)
        last_heard = time.monotonic()
        last_sent = 0.0
        while not self.stopping:
            events = dict(poller.poll(self._poll_ms(last_sent)))
            if sock in events:
                for frames in waiting(sock):
                    code = self._on_message(frames)
                    if code is not None:
                        return code
                last_heard = time.monotonic()
            if self._batches.signal in events:
                batch, answers, seconds = self._batches.take()
                self._send_answers(sock, self._analyzers_of(batch), batch, answers, seconds)
            now = time.monotonic()
            if not self._batches.busy and self._batch_ready(now):
                batch = self._take_batch()
                analyzers = self._analyzers_of(batch)
                if self._runs_inline(analyzers):
                    self._send_answers(sock, analyzers, *self._run_batch(batch))
                else:
                    self._batches.submit(batch)
            if now - last_sent >= self.heartbeat_s:
                # Until tandemd welcomes us, every heartbeat slot re-sends the registration.
                self._send(sock, protocol.encode(self._beat()))
                if self.welcomed:  # its figures, which tandemd exports (docs/metrics.md)
                    self._send(sock, protocol.encode(self.runner.metrics.stats()))
                last_sent = now
            if now - last_heard > self.heartbeat_s * self.liveness:
                return None
        return 0

    def _beat(self) -> protocol.BaseMessage:
        if self.welcomed:
            return protocol.Heartbeat(v=protocol.PROTOCOL_VERSION)
        return protocol.Register(
            v=protocol.PROTOCOL_VERSION,
            kind=self.kind,
            capacity=self.capacity,
            analyzers=[a.name for a in self.runner.analyzers],
            name=self.name,
            child=self.child,
        )

    # -- batching -------------------------------------------------------------------
    def _batch_ready(self, now: float) -> bool:
        if not self._pending:
            return False
        full = min(self.batching.max_batch, self.capacity)
        waited_ms = (now - self._pending[0].arrived) * 1000
        return len(self._pending) >= full or waited_ms >= self.batching.max_wait_ms

    def _poll_ms(self, last_sent: float) -> int:
        """Sleep until the next heartbeat is due, or the oldest pending item's wait ends."""
        now = time.monotonic()
        until = last_sent + self.heartbeat_s - now
        if self._pending and not (self._batches and self._batches.busy):
            waited = now - self._pending[0].arrived
            until = min(until, self.batching.max_wait_ms / 1000 - waited)
        return max(0, int(until * 1000) + 1)

    def _take_batch(self) -> Batch:
        n = min(self.batching.max_batch, len(self._pending))
        return [self._pending.popleft() for _ in range(n)]

    def _analyzers_of(self, batch: Batch) -> frozenset[str]:
        """The analyzers that run on at least one item of the batch."""
        return frozenset(
            a.name for a in self.runner.analyzers if any(a.name not in p.header.skip for p in batch)
        )

    def _runs_inline(self, analyzers: frozenset[str]) -> bool:
        recent = self._recent.get(analyzers)
        return recent is not None and len(recent) == INLINE_AFTER and max(recent) < INLINE_MAX_S

    def _run_batch(self, batch: Batch) -> tuple[Batch, list[Answer], float]:
        """On the batch thread, or this loop for a short batch: the items' answers and the
        seconds they took."""
        started = time.perf_counter()
        answers = self.runner.run([_work_item(p.header, p.payload) for p in batch])
        return batch, answers, time.perf_counter() - started

    def _send_answers(
        self,
        sock: zmq.Socket[bytes],
        analyzers: frozenset[str],
        batch: Batch,
        answers: list[Answer],
        seconds: float,
    ) -> None:
        recent = self._recent.get(analyzers)
        if recent is None:  # not setdefault: that builds a deque for every batch
            recent = self._recent[analyzers] = deque(maxlen=INLINE_AFTER)
        recent.append(seconds)
        results = [
            _result(pending.header, answer, seconds / len(batch))  # the batch's time, shared
            for pending, answer in zip(batch, answers, strict=True)
        ]
        try:
            header = _answers_header(results)
        except (TypeError, ValueError):  # an analyzer (a plugin, say) returned what JSON can't
            header = _answers_header([_json_only(result) for result in results])
        self._send(sock, header)

    # -- messages -------------------------------------------------------------------
    def _on_message(self, frames: list[zmq.Frame]) -> int | None:
        try:
            msg, payloads = protocol.decode(frames)
        except protocol.ProtocolError as exc:
            log.warning("dropped a message from tandemd: %s", exc)
            return None
        if isinstance(msg, protocol.VideoItem | protocol.AudioItem):
            self._pending.append(Pending(msg, payloads[0], time.monotonic()))
        elif isinstance(msg, protocol.Refuse):
            log.error("tandemd refused this worker: %s", msg.reason)
            return EXIT_REFUSED
        elif isinstance(msg, protocol.Stop):
            self.stopping = True
        elif isinstance(msg, protocol.Welcome):
            self.welcomed = True
            self.heartbeat_s = msg.heartbeat_ms / 1000
            self.liveness = msg.liveness
            log.info("registered with tandemd at %s", self.endpoint)
        return None

    def _send(self, sock: zmq.Socket[bytes], header: bytes) -> None:
        # Never block: with no connection (tandemd down, handshake refused) a DEALER send
        # would wait forever. What cannot go now is moot: tandemd re-sends lost items.
        with contextlib.suppress(zmq.Again):
            sock.send(header, zmq.NOBLOCK)


def _result(
    header: protocol.VideoItem | protocol.AudioItem, answer: Answer, infer_s: float
) -> protocol.Result:
    return protocol.Result(
        v=protocol.PROTOCOL_VERSION,
        stream=header.stream,
        modality=header.type,
        seq=header.seq,
        pts=header.pts,
        wall=header.wall,
        outputs=answer.outputs,
        errors=answer.errors,
        infer_s=infer_s,
    )


def _answers_header(results: list[protocol.Result]) -> bytes:
    """One message for the batch: per-message costs on both sides are paid once."""
    if len(results) == 1:
        return protocol.encode(results[0])
    return protocol.encode(protocol.Results(v=protocol.PROTOCOL_VERSION, results=results))


def _json_only(result: protocol.Result) -> protocol.Result:
    """The result with each analyzer whose outputs are not JSON values turned into an
    error for that analyzer alone."""
    outputs, errors = {}, dict(result.errors)
    for name, values in result.outputs.items():
        try:
            protocol.encode_value(values)
        except (TypeError, ValueError) as exc:
            log.error("%s returned outputs that are not JSON values: %s", name, exc)
            errors[name] = f"outputs not JSON values: {exc}"
        else:
            outputs[name] = values
    return msgspec.structs.replace(result, outputs=outputs, errors=errors)


def _work_item(header: protocol.VideoItem | protocol.AudioItem, payload: zmq.Frame) -> WorkItem:
    """The item as analyzers see it: NumPy views of the payload's buffer (no copy, and no
    torch: analyzers that want a tensor take `item.tensor`)."""
    if isinstance(header, protocol.VideoItem):
        array = np.frombuffer(payload.buffer, dtype=np.uint8).reshape(header.shape)
        return WorkItem(
            header.stream,
            "video",
            header.seq,
            header.pts,
            array,
            duration=header.duration,
            skip=frozenset(header.skip),
        )
    samples = np.frombuffer(payload.buffer, dtype=np.float32)
    channels = None
    if header.channels > 1:
        channels = samples.reshape(header.shape).T  # (channels, n): a view, no copy
        samples = channels.mean(axis=0, dtype=np.float32)
    return WorkItem(
        header.stream,
        "audio",
        header.seq,
        header.pts,
        samples,
        header.rate,
        channel_data=channels,
        skip=frozenset(header.skip),
    )
