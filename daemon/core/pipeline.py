"""The per-stream path inside tandemd: items in from ingest, results in from workers,
fused records out to the publisher. The loop in `service` calls these handlers."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import zmq

from daemon.config import Config, StreamConfig
from daemon.core.metrics import Metrics
from daemon.core.stages import StageClock
from daemon.core.stream_state import StreamState
from daemon.dispatch.degrade import Degrader
from daemon.dispatch.dispatcher import Dispatcher
from daemon.dispatch.peers import Held
from daemon.fusion.actions import Cascades
from daemon.fusion.fuser import StreamFuser
from daemon.fusion.rules import leaves
from daemon.fusion.scene import StreamScene
from daemon.ingest.hub import IngestHub
from daemon.publishing.format import digest_line
from daemon.publishing.records import AnalysisRate, Status, detections_record
from daemon.publishing.snapshots import EventSnapshots
from daemon.wire import protocol
from daemon.wire.vocabulary import MODALITIES
from streams import redact

if TYPE_CHECKING:
    from daemon.publishing.publisher import Publisher

log = logging.getLogger("pipeline")


class Pipeline:
    """Built whole from tandemd's bound sockets: it makes the ingest hub and the
    dispatcher itself, with its own handlers, so nothing outside wires the two."""

    def __init__(
        self,
        config: Config,
        metrics: Metrics,
        publisher: Publisher,
        dispatch_sock: zmq.Socket[bytes],
        ingest_sock: zmq.Socket[bytes],
        snapshots: EventSnapshots | None = None,
        on_dead_child: Callable[[str], None] = lambda child: None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.publisher = publisher
        self.snapshots = snapshots
        window_s = config.fusion.window_s
        # One state per stream (daemon/core/stream_state.py), removed as one.
        self.streams = {s.id: StreamState(s, self._fuser(s)) for s in config.streams}
        # An event starts at most this long before the window that decides it.
        self._longest_rule_s = max(
            (
                r.min_duration_s + max((c.for_s for _, c in leaves(r.when)), default=0.0)
                for r in config.events
            ),
            default=0.0,
        )
        self._last_digest = time.monotonic()
        self.stages = StageClock(metrics, window_s)  # per-stage latency histograms
        self._rules = {r.name: r for r in config.events}
        self.cascades = Cascades(
            config.fusion.max_actions_per_minute,
            self.request_fps,
            self.request_analyzer,
            lambda stream, action, outcome: self.metrics.actions.labels(
                stream, action, outcome
            ).inc(),
        )
        # Analyzers that run on a stream's items only while a cascade has them on.
        self.on_demand = {
            "video": frozenset(config.workers.vision.on_demand),
            "audio": frozenset(config.workers.audio.on_demand),
        }
        dispatch = config.dispatch
        self.dispatcher = Dispatcher(
            dispatch_sock,
            metrics,
            dispatch.heartbeat_interval_ms,
            dispatch.heartbeat_liveness,
            on_result=self.on_result,
            on_released=self.on_released,
            on_lost=self.on_lost,
            on_dead_child=on_dead_child,
            max_message_bytes=dispatch.max_message_bytes,
        )
        self.hub = IngestHub(
            ingest_sock,
            metrics,
            dispatch.max_message_bytes,
            on_hello=self.on_hello,
            on_item=self.on_item,
            on_end=self.on_end,
            on_state=self.on_state,
        )
        self.degrader = Degrader(
            config.streams, metrics, self.hub.set_fps, self._degraded, time.monotonic()
        )
        for s in config.streams:
            self._attach_stream(s)

    def _fuser(self, s: StreamConfig) -> StreamFuser:
        fusion = self.config.fusion
        # A file loses nothing, so its windows wait for every result: a slow modality
        # (a costly vision analyzer) must not make the other's windows go out without it.
        delay_s = fusion.max_delay_ms / 1000 if s.mode == "live" else math.inf
        wanted = {m for m in MODALITIES if getattr(s, m)}
        scene = StreamScene(s.id, self.config.tracked(s), s.zones, s.lines)
        return StreamFuser(s.id, wanted, fusion.window_s, delay_s, self.config.events, scene)

    # -- from ingest --------------------------------------------------------------
    def on_hello(self, stream: str, hello: protocol.IngestHello) -> None:
        self.streams[stream].timeline.restart()
        log.info("stream %s: ingest process %d started", stream, hello.pid)

    def on_state(self, msg: protocol.IngestState) -> None:
        """A health transition: a log line, a `status.<stream>` message (the metric is
        the hub's)."""
        stream = msg.stream
        if msg.state == "running" and msg.video is not None and msg.audio is not None:
            state = self.streams[stream]
            state.fuser.set_present("video", msg.video and "video" in state.wanted)
            state.fuser.set_present("audio", msg.audio and "audio" in state.wanted)
        level = (
            logging.WARNING if msg.state in ("stalled", "failed", "reconnecting") else logging.INFO
        )
        log.log(level, "stream %s: %s -> %s: %s", stream, msg.previous, msg.state, msg.reason)
        self._status(stream, msg.state, msg.reason, previous=msg.previous)

    def on_item(self, held: Held) -> None:
        self.stages.item(held.header)
        state = self.streams[held.header.stream]
        held.header = state.timeline.rebase(held.header)
        if state.objective_s is not None:
            held.deadline = held.header.wall + state.objective_s
        h = held.header
        update: dict[str, Any] = {}
        if h.sender_wall is not None:
            # Fusion publishes the mapping; workers need not see it.
            state.sender_offset = h.sender_wall - h.pts
            update["sender_wall"] = None
        asleep = self.on_demand[h.type] - state.requested_analyzers.keys()
        if asleep:
            update["skip"] = sorted(asleep)
        if update:
            held.header = h = msgspec.structs.replace(h, **update)
        state.fuser.on_item(h.type, h.seq, h.pts, h.duration)
        if self.snapshots is not None and h.type == "video":
            self.snapshots.add_frame(h.stream, h.pts, held.payload, h.shape)
        self.dispatcher.enqueue(held)

    def on_end(self, stream: str, end: protocol.IngestEnd) -> None:
        state = self.streams[stream]
        if end.reason == "error":
            log.error("stream %s failed: %s", stream, end.error)
        else:
            log.info("stream %s ended (%s)", stream, end.reason)
        if state.live and end.reason != "stopped":
            # The ingest process crashed; it restarts and the stream's timeline continues.
            return
        state.fuser.on_end()
        # The status goes out once the stream's last window is published.
        state.ending = end.error or end.reason

    # -- from workers -------------------------------------------------------------
    def on_result(self, result: protocol.Result) -> bool:
        self.stages.result(result)
        state = self.streams.get(result.stream)
        if state is None:
            return False
        fuser = state.fuser
        late_before = fuser.late_results
        end = fuser.item_end(result.modality, result.seq)
        accepted = fuser.on_result(result)
        if fuser.late_results > late_before and self.config.fusion.corrections:
            self.publisher.publish("correction", result.stream, fuser.correction(result))
        if end is not None and state.config.detections:
            self._publish_detections(result, end)  # a new answer, in time or late
        return accepted

    def _publish_detections(self, result: protocol.Result, end: float) -> None:
        if self.publisher.publish("detections", result.stream, detections_record(result, end)):
            self.metrics.detections.labels(result.stream, result.modality).inc()

    def on_released(self, held: Held) -> None:
        self.hub.release(held)

    def on_lost(self, held: Held, reason: str) -> None:
        """An item given up without a result: counted, and fusion stops waiting for it."""
        h = held.header
        if reason == "stale":
            self.metrics.dropped.labels(h.stream, h.type, reason).inc()
            self.degrader.on_stale(h.stream, h.type)
        else:
            self.metrics.items_lost.labels(h.stream, h.type, reason).inc()
        state = self.streams.get(h.stream)  # None: the stream was removed (reload)
        if state is not None:
            state.fuser.on_lost(h.type, h.seq, h.pts)
        self.hub.release(held)

    # -- reload (daemon/core/reload.py) ---------------------------------------------------
    def add_stream(self, s: StreamConfig) -> None:
        self.streams[s.id] = StreamState(s, self._fuser(s))
        self.degrader.add(s)
        self._attach_stream(s)

    def _attach_stream(self, s: StreamConfig) -> None:
        self.hub.add_stream(s.id, s.queue)
        if self.snapshots is not None and s.video:
            self.snapshots.add_stream(s.id)

    def remove_stream(self, stream: str) -> None:
        """The stream's state goes, and every other owner forgets it."""
        self.streams.pop(stream, None)
        self.stages.forget(stream)
        self.degrader.remove(stream)
        self.dispatcher.forget_stream(stream)
        self.hub.forget(stream)
        if self.snapshots is not None:
            self.snapshots.forget(stream)

    def stream_complete(self, stream: str) -> bool:
        state = self.streams.get(stream)
        return state is None or (state.fuser.complete and state.ending is None)

    # -- cascades (daemon/fusion/actions.py) --------------------------------------
    def request_fps(self, stream: str, fps: float | None, reason: str) -> None:
        """A cascade asks for the stream's video analysis fps (None: back to the rate the
        config and the overload policy give it); the ingest process applies it."""
        state = self.streams.get(stream)
        if state is None or stream not in self.hub.links:
            return
        state.requested_fps = fps
        if fps is None:
            fps = self.degrader.current(stream)
        if fps is not None:
            self.hub.set_fps(stream, fps)
            self.metrics.analysis_fps.labels(stream).set(fps)
        log.info("stream %s: analysis fps %s (%s)", stream, fps, reason)

    def request_analyzer(self, stream: str, analyzer: str, on: bool, reason: str) -> None:
        """A cascade switches an on-demand analyzer on or off for the stream: items that
        reach tandemd from now on list it in `skip` (for the workers) unless it is on."""
        state = self.streams.get(stream)
        if state is None:
            return
        woken = state.requested_analyzers
        woken[analyzer] += 1 if on else -1
        if woken[analyzer] <= 0:
            del woken[analyzer]
        log.info("stream %s: analyzer %s %s (%s)", stream, analyzer, "on" if on else "off", reason)

    def active_events(self, stream: str | None = None) -> list[dict[str, Any]]:
        """The events active now (their start messages), of one stream or all."""
        return [
            event
            for sid, state in self.streams.items()
            if stream is None or sid == stream
            for event in state.fuser.events.active()
        ]

    def recent_events(self, stream: str | None = None) -> list[dict[str, Any]]:
        """The last ended events (end messages, oldest first; a bounded history per
        stream), of one stream or all."""
        return [
            event
            for sid, state in self.streams.items()
            if stream is None or sid == stream
            for event in state.fuser.events.history
        ]

    # -- out ----------------------------------------------------------------------
    def publish_due(self, now: float, flush: bool = False) -> None:
        for stream, state in self.streams.items():
            fuser = state.fuser
            for record in fuser.due(now, flush=flush):
                self._publish_events(stream, fuser.events.take())
                if state.sender_offset is not None:
                    record["sender_clock"] = {"offset_s": round(state.sender_offset, 6)}
                started = time.perf_counter()
                self.publisher.publish("fused", stream, record)
                self.stages.published(
                    stream, record["window"]["start"], time.perf_counter() - started
                )
                self.metrics.fused.labels(stream).inc()
                if record["partial"]:
                    self.metrics.fused_partial.labels(stream).inc()
                if record["latency_s"] is not None:
                    self.metrics.latency.labels(stream).observe(record["latency_s"])
                state.last_record = record
                if self.snapshots is not None:
                    # No event can start before this any more: its frames can go.
                    start = record["window"]["start"] - self._longest_rule_s
                    self.snapshots.release_before(stream, start)
            if state.ending is not None and fuser.complete:
                fuser.close()
                self._publish_events(stream, fuser.events.take())
                detail, state.ending = state.ending, None
                self._status(stream, "ended" if detail in ("eof", "stopped") else "failed", detail)
        self.cascades.tick()
        self._digest(now)
        # Out with these records: what was queued since the last scan (per-item detections,
        # statuses), in order; batched, that costs a fraction of a send per message.
        self.publisher.flush()

    def _degraded(self, stream: str, fps: float, configured: float, reason: str) -> None:
        """Publish the overload policy's change of a stream's analysis fps."""
        rate = AnalysisRate(
            stream=stream,
            fps=fps,
            configured_fps=configured,
            degraded=fps < configured,
            detail=reason,
            at=time.time(),
        )
        self.publisher.publish("status", stream, rate)

    def _publish_events(self, stream: str, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            snapshot = self.snapshots.take(message) if self.snapshots is not None else None
            self.publisher.publish("event", stream, message)
            if snapshot is not None:
                self.publisher.publish("snapshot", stream, *snapshot)
            rule = self._rules.get(message["name"])
            if message["edge"] == "start" and rule is not None and rule.actions:
                self.cascades.on_event_start(stream, rule.name, list(rule.actions))
            self.metrics.events.labels(stream, message["name"], message["edge"]).inc()
            log.info(
                "event %s %s %s: %.2f-%s s",
                stream,
                message["name"],
                message["edge"],
                message["start"],
                "" if message["end"] is None else f"{message['end']:.2f}",
            )

    def _status(
        self, stream: str, state: str, detail: str | None, previous: str | None = None
    ) -> None:
        """Publish a `status.<stream>` message: the stream's state changed."""
        message = Status(
            stream=stream,
            state=state,  # type: ignore[arg-type]  # one of STREAM_STATES, from ingest
            previous=msgspec.UNSET if previous is None else previous,
            detail=None if detail is None else redact(detail),
            at=time.time(),
        )
        self.publisher.publish("status", stream, message)

    def _digest(self, now: float) -> None:
        every = self.config.log.digest_s
        if not every or now - self._last_digest < every:
            return
        self._last_digest = now
        for stream, state in self.streams.items():
            if state.last_record is not None:
                log.info("%s", digest_line(stream, state.last_record))
