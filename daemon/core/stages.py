"""Per-stream latency of each stage of tandemd's path, one histogram with a `stage` label:

capture_to_decode  the source's capture (RTCP sender clock) to decode; sources with
                   sender reports only, and as good as the two hosts' clock sync
ingest             decode to arrival in tandemd (the ingest ring and the handoff)
queue              arrival in tandemd to dispatch to a worker (each send; observed by
                   the dispatcher)
inference          the worker's analysis time of one item (Result.infer_s)
fusion             the last result of a window arriving to its record being published
publish            serialising and sending one record on the PUB socket

Labels: stream x 6 stages, never per frame. See docs/metrics.md.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from daemon.core.metrics import Metrics
from daemon.wire import protocol
from daemon.wire.vocabulary import KINDS

if TYPE_CHECKING:
    from daemon.dispatch.dispatcher import Dispatcher
    from daemon.ingest.hub import IngestHub

MAX_OPEN_WINDOWS = 10000  # per stream: a bound, far above any real backlog


class StageClock:
    def __init__(self, metrics: Metrics, window_s: float) -> None:
        self.metrics = metrics
        self.window_s = window_s
        self._last_result: dict[str, dict[int, float]] = {}  # stream -> window -> arrival

    def _observe(self, stream: str, stage: str, seconds: float) -> None:
        self.metrics.stage_latency.labels(stream, stage).observe(max(0.0, seconds))

    def item(self, header: protocol.VideoItem | protocol.AudioItem) -> None:
        """An item arrived from ingest (before any rebasing of its media time)."""
        now = time.time()
        self._observe(header.stream, "ingest", now - header.wall)
        if header.sender_wall is not None:
            # sender_wall is the source's clock at this item's media time: its capture.
            self._observe(header.stream, "capture_to_decode", header.wall - header.sender_wall)

    def result(self, result: protocol.Result) -> None:
        self._observe(result.stream, "inference", result.infer_s)
        windows = self._last_result.setdefault(result.stream, {})
        if len(windows) < MAX_OPEN_WINDOWS:
            windows[int(result.pts // self.window_s)] = time.monotonic()

    def published(self, stream: str, window_start: float, publish_s: float) -> None:
        self._observe(stream, "publish", publish_s)
        windows = self._last_result.get(stream, {})
        index = round(window_start / self.window_s)
        arrived = windows.pop(index, None)
        for older in [i for i in windows if i < index]:
            del windows[older]
        if arrived is not None:
            self._observe(stream, "fusion", time.monotonic() - arrived)

    def forget(self, stream: str) -> None:
        self._last_result.pop(stream, None)


def sample_flow(metrics: Metrics, dispatcher: Dispatcher, hub: IngestHub) -> None:
    """Queue, in-flight, credit and per-stream depth gauges, set from tandemd's loop."""
    for kind in KINDS:
        free = sum(p.credit for p in dispatcher.peers.values() if p.kind == kind)
        metrics.credits.labels(kind).set(free)
        metrics.queued.labels(kind).set(dispatcher.queued(kind))
        metrics.inflight.labels(kind).set(dispatcher.inflight(kind))
    for stream, link in hub.links.items():
        metrics.stream_held.labels(stream).set(link.held)
