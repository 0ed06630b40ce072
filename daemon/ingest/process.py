"""The ingest process of one stream: owns its lifecycle from start to stop.

Started by tandemd as `python -m daemon.ingest --stream ID` with its spec on stdin
(daemon/ingest/launch.py: never in argv, where a URL's password would show in `ps`).
A decode thread runs the stream (`streams.run_stream`: sessions, reconnects, media
timeline) and hands its items and events over a small bounded queue to the main thread,
which owns the link to tandemd and the stream's health state machine. So a source
blocked inside FFmpeg still lets this process answer tandemd, notice the stall and stop
when asked.

Exit codes: 0 end of source or stopped, 1 the decode thread crashed (tandemd restarts
the process), 3 a file source failed (the error is sent to tandemd first).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import zmq

from daemon.ingest.launch import IngestLaunch, LaunchError
from daemon.ingest.sender import IngestSender
from daemon.runtime.allocator import freeze_startup_objects, keep_frame_buffers
from daemon.runtime.lifeline import die_with_parent
from daemon.runtime.logs import setup_logging
from streams import (
    AnalysisRate,
    Finished,
    Health,
    Interrupted,
    Opened,
    SourceSpec,
    SourceStats,
    Transition,
    run_stream,
)

log = logging.getLogger("ingest")
EXIT_CRASHED = 1
EXIT_SOURCE_FAILED = 3
LIVE_DRAIN_S = 1.0
# Items and events between the decode thread and the sender: small, so a file's decoder
# waits for the workers, and a live stream's drops happen in the sender's rings.
HANDOFF_BOUND = 4
POLL_MS = 20
# After a stall, media must come for this long (at most half the stall timeout) before the
# stream is `running` again. A silent source that finally ends or times out makes its
# demuxer let go of the packets it held back, all in the same millisecond: media from
# before the stall, sent on as usual, but no sign that media flows.
RECOVERY_S = 0.5


@dataclass(frozen=True)
class _Crashed:
    """The decode thread died of a bug (not of a bad source)."""

    error: str


def _decode(
    spec: SourceSpec,
    stats: SourceStats,
    stop: threading.Event,
    out: queue.Queue[object],
    rate: AnalysisRate,
) -> None:
    try:
        for event in run_stream(spec, stats, stop, rate):
            out.put(event)
    except Exception as exc:  # a bug, not a bad source: the process restarts
        log.exception("stream %r: decode thread crashed", spec.stream_id)
        out.put(_Crashed(f"stream {spec.stream_id!r} ({spec.url}): decoder crashed: {exc!r}"))


class IngestRun:
    """The main thread's side: events in order, health transitions, the stall watch."""

    def __init__(self, spec: SourceSpec, sender: IngestSender, stats: SourceStats) -> None:
        self.spec = spec
        self.sender = sender
        self.stats = stats
        self.modalities: tuple[bool, bool] | None = None
        self.health = Health(spec.stream_id, on_change=self._on_change)
        self.last_media = time.monotonic()
        self.resumed_at: float | None = None  # first item after a stall

    def run(self, events: queue.Queue[object], decoder: threading.Thread) -> int:
        for event in self._events(events, decoder):
            if isinstance(event, Opened):
                self.modalities = (event.video, event.audio)
                log.info("opened %s (video: %s, audio: %s)", self.spec.url, *self.modalities)
            elif isinstance(event, Interrupted):
                self._interrupted(event)
            elif isinstance(event, Finished):
                return self._finished(event)
            elif isinstance(event, _Crashed):
                self.sender.end("error", event.error)
                return EXIT_CRASHED
            else:
                self._media(time.monotonic())
                self.sender.put(event)  # type: ignore[arg-type]
            if self.sender.stopping:
                break
        self.health.to("stopped", "stopped by tandemd")
        self.sender.end("stopped")
        return 0

    def _events(self, events: queue.Queue[object], decoder: threading.Thread) -> Iterator[object]:
        while not self.sender.stopping:
            try:
                yield events.get_nowait()
                continue
            except queue.Empty:
                pass
            if not decoder.is_alive() and events.empty():
                yield _Crashed(f"stream {self.spec.stream_id!r}: decode thread ended")
                return
            self.sender.pump(timeout_ms=POLL_MS)
            self._watch_stall()

    def _media(self, now: float) -> None:
        if self.health.state != "stalled":
            self.health.to("running", "media flowing")
        elif self.resumed_at is None or now - self.last_media > self.spec.stall_timeout_s:
            self.resumed_at = now
        elif now - self.resumed_at >= min(RECOVERY_S, self.spec.stall_timeout_s / 2):
            self.health.to("running", f"media flowing again for {now - self.resumed_at:.1f} s")
        self.last_media = now

    def _watch_stall(self) -> None:
        silent = time.monotonic() - self.last_media
        if self.health.state == "running" and silent > self.spec.stall_timeout_s:
            self.health.to("stalled", f"no media for {silent:.1f} s")

    def _interrupted(self, event: Interrupted) -> None:
        if not event.opened:
            self.health.to("failed", event.reason)
        else:
            self.health.to("reconnecting", event.reason)
        if self.health.state == "failed":
            self.health.to(
                "reconnecting", f"attempt {event.attempt + 1} in {event.retry_in_s:.1f} s"
            )
        self.last_media = time.monotonic()

    def _finished(self, event: Finished) -> int:
        if event.reason == "error":
            log.error("%s", event.error)
            self.health.to("failed", event.error or "error")
            self.sender.end("error", event.error)
            return EXIT_SOURCE_FAILED
        self.sender.drain(LIVE_DRAIN_S if self.spec.live else None)
        self.health.to("stopped", "end of file" if event.reason == "eof" else event.reason)
        self.sender.end("stopped" if self.sender.stopping else "eof")
        return 0

    def _on_change(self, change: Transition) -> None:
        self.resumed_at = None
        log.debug("%s -> %s: %s", change.previous, change.state, change.reason)
        video, audio = (
            self.modalities if change.state == "running" and self.modalities else (None, None)
        )
        self.sender.state(change, video, audio)


def run(spec: SourceSpec, endpoint: str, bound: int) -> int:
    stats = SourceStats()
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sender = IngestSender(ctx, endpoint, spec.stream_id, live=spec.live, bound=bound, stats=stats)
    sender.rate = rate = AnalysisRate(spec.fps)
    stop = threading.Event()
    events: queue.Queue[object] = queue.Queue(maxsize=HANDOFF_BOUND)
    decoder = threading.Thread(
        target=_decode, args=(spec, stats, stop, events, rate), name="decode", daemon=True
    )
    try:
        sender.hello(video=spec.video, audio=spec.audio)
        decoder.start()
        return IngestRun(spec, sender, stats).run(events, decoder)
    finally:
        stop.set()
        _unblock(events)
        decoder.join(timeout=1.0)  # may sit in FFmpeg until its read timeout: not waited on
        sender.close()
        ctx.term()


def _unblock(events: queue.Queue[object]) -> None:
    """Empty the handoff so a decode thread waiting to put sees the stop."""
    try:
        while True:
            events.get_nowait()
    except queue.Empty:
        pass


def main(argv: list[str] | None = None) -> int:
    die_with_parent()
    keep_frame_buffers()
    args = sys.argv[1:] if argv is None else argv
    try:
        launch = IngestLaunch.parse(args, sys.stdin.buffer.read())
    except LaunchError as exc:
        print(f"ingest: {exc}", file=sys.stderr)
        return 2
    setup_logging(launch.log_level, f"ingest[{launch.spec.stream_id}]")
    freeze_startup_objects()
    return run(launch.spec, launch.endpoint, bound=launch.bound)
