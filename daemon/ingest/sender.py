"""The ingest side of the tandemd link: a bounded local ring drained by tandemd's credit.

Live streams never block the decoder: when tandemd has no room, the oldest item of the
same modality is dropped and counted ("backpressure"). File streams block instead, so a
file loses nothing and runs as fast as the workers take it.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from typing import Any, Literal

import zmq

from daemon.runtime.logs import RATE_LIMITED
from daemon.wire import protocol
from daemon.wire.inbox import waiting
from streams import AnalysisRate, AudioChunk, MediaItem, SourceStats, Transition, VideoFrame, redact

log = logging.getLogger("ingest")

STATS_INTERVAL_S = 0.5


class IngestSender:
    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        endpoint: str,
        stream_id: str,
        live: bool,
        bound: int,
        stats: SourceStats,
    ) -> None:
        self.stream_id = stream_id
        self.rate: AnalysisRate | None = None  # the decoder's sampling rate, set by tandemd
        self.live = live
        self.bound = bound
        self.stats = stats
        self.drops: dict[str, int] = {}
        self.credit = 0
        self.stopping = False
        self._video: deque[VideoFrame] = deque()
        self._audio: deque[AudioChunk] = deque()
        self._last_stats = 0.0
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 2000)
        self.sock.setsockopt(zmq.IDENTITY, stream_id.encode())
        self.sock.connect(endpoint)

    def hello(self, video: bool, audio: bool) -> None:
        """Announce the opened source and which modalities it has."""
        self._send(
            protocol.IngestHello(
                v=protocol.PROTOCOL_VERSION,
                stream=self.stream_id,
                pid=os.getpid(),
                video=video,
                audio=audio,
            )
        )

    def state(self, change: Transition, video: bool | None, audio: bool | None) -> None:
        """Tell tandemd the stream's health changed."""
        self._send(
            protocol.IngestState(
                v=protocol.PROTOCOL_VERSION,
                stream=self.stream_id,
                state=change.state,
                previous=change.previous,
                reason=redact(change.reason)[:4096],
                at=change.at,
                video=video,
                audio=audio,
            )
        )

    def put(self, item: MediaItem) -> None:
        """Queue one item; blocks a file stream while the ring is full."""
        ring: deque[VideoFrame] | deque[AudioChunk] = (
            self._video if isinstance(item, VideoFrame) else self._audio
        )
        if self.live:
            if len(ring) >= self.bound:
                dropped = ring.popleft()
                self._count_drop(dropped, "backpressure")
        else:
            while len(ring) >= self.bound and not self.stopping:
                self.pump(timeout_ms=100)
        ring.append(item)  # type: ignore[arg-type]
        self.pump(timeout_ms=0)

    def drain(self, deadline_s: float | None = None) -> None:
        """Send what is left in the ring, waiting for credit, until `deadline_s` if given."""
        start = time.monotonic()
        while (self._video or self._audio) and not self.stopping:
            if deadline_s is not None and time.monotonic() - start > deadline_s:
                break
            self.pump(timeout_ms=100)

    def pump(self, timeout_ms: int) -> None:
        """Read credits and stop requests, then send what the credit allows."""
        if self.sock.poll(timeout_ms, zmq.POLLIN):
            for frames in waiting(self.sock, copy=True):
                self._on_message(frames)
        while self.credit > 0 and (self._video or self._audio):
            self._send_item(self._next_item())
            self.credit -= 1
        now = time.monotonic()
        if now - self._last_stats >= STATS_INTERVAL_S:
            self.send_stats()

    def send_stats(self) -> None:
        self._last_stats = time.monotonic()
        counters = {name: getattr(self.stats, name) for name in self.stats.__dataclass_fields__}
        self._send(
            protocol.IngestStats(
                v=protocol.PROTOCOL_VERSION,
                stream=self.stream_id,
                counters=counters,
                drops=dict(self.drops),
            )
        )

    def end(self, reason: Literal["eof", "error", "stopped"], error: str | None = None) -> None:
        self.send_stats()
        self._send(
            protocol.IngestEnd(
                v=protocol.PROTOCOL_VERSION,
                stream=self.stream_id,
                reason=reason,
                error=None if error is None else redact(error),
            )
        )

    def close(self) -> None:
        self.sock.close()

    def _next_item(self) -> MediaItem:
        # Oldest media time first, so audio and video reach tandemd interleaved.
        if not self._audio:
            return self._video.popleft()
        if not self._video:
            return self._audio.popleft()
        if self._audio[0].pts <= self._video[0].pts:
            return self._audio.popleft()
        return self._video.popleft()

    def _send_item(self, item: MediaItem) -> None:
        header: protocol.VideoItem | protocol.AudioItem
        if isinstance(item, VideoFrame):
            h, w, c = item.image.shape
            header = protocol.VideoItem(
                v=protocol.PROTOCOL_VERSION,
                stream=item.stream_id,
                seq=item.seq,
                pts=item.pts,
                duration=item.duration,
                wall=item.capture_wall,
                shape=(h, w, c),
                sender_wall=item.sender_wall,
            )
            payload: Any = item.image
        else:
            header = protocol.AudioItem(
                v=protocol.PROTOCOL_VERSION,
                stream=item.stream_id,
                seq=item.seq,
                pts=item.pts,
                wall=item.capture_wall,
                rate=item.sample_rate,
                shape=item.samples.shape,  # (n,) or (n, channels)
                sender_wall=item.sender_wall,
            )
            payload = item.samples
        self.sock.send_multipart([protocol.encode(header), payload], copy=False)

    def _on_message(self, frames: list[bytes]) -> None:
        try:
            msg, _ = protocol.decode(frames)
        except protocol.ProtocolError as exc:
            # Only tandemd talks to this socket: a message it cannot read is a version
            # mismatch or a bug, worth a line (rate-limited), never a crash.
            log.warning("stream %s: dropped a message from tandemd: %s", self.stream_id, exc,
                        extra=RATE_LIMITED)  # fmt: skip
            return
        if isinstance(msg, protocol.Credit):
            self.credit += msg.n
        elif isinstance(msg, protocol.Stop):
            self.stopping = True
        elif isinstance(msg, protocol.IngestControl) and self.rate is not None:
            log.info("analysis fps of %s set to %g by tandemd", self.stream_id, msg.fps)
            self.rate.fps = msg.fps

    def _count_drop(self, item: MediaItem, reason: str) -> None:
        key = f"{'video' if isinstance(item, VideoFrame) else 'audio'}:{reason}"
        self.drops[key] = self.drops.get(key, 0) + 1

    def _send(self, msg: protocol.BaseMessage) -> None:
        self.sock.send(protocol.encode(msg))
