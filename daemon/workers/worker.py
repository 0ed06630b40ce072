"""A worker process: owns its lifecycle (connect, register, serve, reconnect, stop).

It holds at most `capacity` items (tandemd never sends more), answers each with one
result, heartbeats tandemd, and re-registers by itself when tandemd goes silent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections import deque
from types import FrameType
from typing import Any, Literal

import numpy as np
import torch
import zmq

from daemon import protocol
from daemon.security import secure_client
from daemon.workers.analyzers import Analyzer, Modality, WorkItem

log = logging.getLogger("worker")
EXIT_REFUSED = 2


class Worker:
    def __init__(
        self,
        endpoint: str,
        kind: str,
        analyzers: list[Analyzer],
        capacity: int,
        heartbeat_ms: int = 1000,
        liveness: int = 3,
    ) -> None:
        self.endpoint = endpoint
        self.kind: Literal["vision", "audio"] = "vision" if kind == "vision" else "audio"
        self.modality: Modality = "video" if kind == "vision" else "audio"
        self.analyzers = analyzers
        self.capacity = capacity
        self.heartbeat_s = heartbeat_ms / 1000
        self.liveness = liveness
        self.name = f"{socket.gethostname()}:{os.getpid()}:{kind}"
        self.stopping = False
        self.welcomed = False
        self.curve: tuple[str, str] | None = None  # (server public key file, our secret key file)
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._pending: deque[tuple[protocol.VideoItem | protocol.AudioItem, Any]] = deque()

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        try:
            while not self.stopping:
                code = self._session()
                if code is not None:
                    return code
                log.warning("tandemd at %s went silent; registering again", self.endpoint)
            return 0
        finally:
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
        last_heard = time.monotonic()
        last_sent = 0.0
        while not self.stopping:
            timeout = 0 if self._pending else int(self.heartbeat_s * 1000)
            if sock.poll(timeout, zmq.POLLIN):
                while sock.poll(0, zmq.POLLIN):
                    code = self._on_message(sock.recv_multipart(copy=False))
                    if code is not None:
                        return code
                last_heard = time.monotonic()
            if self._pending:
                header, payload = self._pending.popleft()
                self._send(sock, self._answer(header, payload))
            now = time.monotonic()
            if now - last_sent >= self.heartbeat_s:
                # Until tandemd welcomes us, every heartbeat slot re-sends the registration.
                self._send(sock, self._beat())
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
            analyzers=[a.name for a in self.analyzers],
            name=self.name,
        )

    def _on_message(self, frames: list[zmq.Frame]) -> int | None:
        try:
            msg, payloads = protocol.decode(frames)
        except protocol.ProtocolError as exc:
            log.warning("dropped a message from tandemd: %s", exc)
            return None
        if isinstance(msg, protocol.VideoItem | protocol.AudioItem):
            self._pending.append((msg, payloads[0]))
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

    def _answer(
        self, header: protocol.VideoItem | protocol.AudioItem, payload: Any
    ) -> protocol.Result:
        item = _work_item(header, payload)
        outputs: protocol.Outputs = {}
        errors: dict[str, str] = {}
        start = time.perf_counter()
        with torch.inference_mode():
            for analyzer in self.analyzers:
                try:
                    outputs[analyzer.name] = analyzer.analyze(item)
                except Exception as exc:  # one analyzer's bug must not lose the others' results
                    log.exception(
                        "analyzer %s failed on %s#%d", analyzer.name, item.stream, item.seq
                    )
                    errors[analyzer.name] = f"{type(exc).__name__}: {exc}"
        return protocol.Result(
            v=protocol.PROTOCOL_VERSION,
            stream=header.stream,
            modality=item.modality,
            seq=header.seq,
            pts=header.pts,
            wall=header.wall,
            outputs=outputs,
            errors=errors,
            infer_s=time.perf_counter() - start,
        )

    def _send(self, sock: zmq.Socket[bytes], msg: protocol.BaseMessage) -> None:
        # Never block: with no connection (tandemd down, handshake refused) a DEALER send
        # would wait forever. What cannot go now is moot: tandemd re-sends lost items.
        with contextlib.suppress(zmq.Again):
            sock.send(protocol.encode(msg), zmq.NOBLOCK)


def _work_item(header: protocol.VideoItem | protocol.AudioItem, payload: zmq.Frame) -> WorkItem:
    if isinstance(header, protocol.VideoItem):
        array = np.frombuffer(payload.buffer, dtype=np.uint8).reshape(header.shape)
        return WorkItem(header.stream, "video", header.seq, header.pts, torch.from_numpy(array))
    samples = np.frombuffer(payload.buffer, dtype=np.float32)
    return WorkItem(
        header.stream, "audio", header.seq, header.pts, torch.from_numpy(samples), header.rate
    )
