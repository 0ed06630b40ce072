"""Window fusion of one stream's vision and audio results on its media timeline.

A window [k*w, (k+1)*w) is published when every modality the stream has is covered past
its end (every item before the end answered or given up), or `max_delay` after the stream
moved past it, or after the stream has been idle that long; whichever comes first.
Windows are published in order; a window that received no item at all is skipped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from daemon.fusion.events import EventEngine
from daemon.fusion.pending import PendingItems
from daemon.fusion.rules import EventRule
from daemon.fusion.scene import StreamScene
from daemon.fusion.speech import StreamSpeech
from daemon.fusion.summary import error_counts, summarize
from daemon.fusion.sync import SyncEstimator
from daemon.wire.protocol import Result
from daemon.wire.vocabulary import MODALITIES, Modality

RECORD_SCHEMA = 3  # 2: `events` and `av_sync` added; 3: tracks, zones, lines, speech, transcript
CORRECTION_SCHEMA = 1


@dataclass
class _Window:
    index: int
    items: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})
    results: dict[str, list[Result]] = field(default_factory=lambda: {"video": [], "audio": []})
    lost: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})
    passed_at: float | None = None  # monotonic time the stream first moved past its end


class StreamFuser:
    def __init__(
        self,
        stream: str,
        modalities: Collection[str],
        window_s: float,
        max_delay_s: float,
        rules: list[EventRule] | None = None,
        scene: StreamScene | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stream = stream
        self._clock = clock  # the same clock as due()'s `now`: monotonic seconds
        self.events = EventEngine(stream, rules or [])
        self.scene = scene or StreamScene(stream, track=())
        self.speech = StreamSpeech()
        self.sync = SyncEstimator()
        self.window_s = window_s
        self.max_delay_s = max_delay_s
        self.pending = {m: PendingItems() for m in MODALITIES}
        for m in MODALITIES:
            self.pending[m].present = m in modalities
        self._windows: dict[int, _Window] = {}
        self._next_index = 0  # windows below this are published or skipped
        self._last_activity = clock()
        self.late_results = 0

    def set_present(self, modality: Modality, present: bool) -> None:
        self.pending[modality].present = present

    def on_item(self, modality: Modality, seq: int, pts: float, duration: float) -> None:
        now = self._clock()
        self._last_activity = now
        self.pending[modality].add(seq, pts, duration)
        index = self._index(pts)
        if index < self._next_index:
            return  # an item for an already published window: its result will count as late
        window = self._windows.get(index) or self._windows.setdefault(index, _Window(index))
        window.items[modality] += 1
        for earlier in self._windows.values():
            if earlier.index < index and earlier.passed_at is None:
                earlier.passed_at = now

    def item_end(self, modality: Modality, seq: int) -> float | None:
        """The media end of an item not answered yet; None once answered or given up."""
        return self.pending[modality].end_of(seq)

    def on_result(self, result: Result) -> bool:
        """Add a worker's answer; False when it is a duplicate or too late for its window."""
        self._last_activity = self._clock()
        if not self.pending[result.modality].settle(result.seq):
            return False
        window = self._windows.get(self._index(result.pts))
        if window is None:
            self.late_results += 1
            return False
        window.results[result.modality].append(result)
        return True

    def on_lost(self, modality: Modality, seq: int, pts: float) -> None:
        if self.pending[modality].settle(seq):
            window = self._windows.get(self._index(pts))
            if window is not None:
                window.lost[modality] += 1

    def on_end(self, modality: Modality | None = None) -> None:
        for m in [modality] if modality else MODALITIES:
            self.pending[m].ended = True

    def due(self, now: float, flush: bool = False) -> list[dict[str, Any]]:
        """Records of the windows ready now, in media order."""
        out: list[dict[str, Any]] = []
        idle = now - self._last_activity >= max(self.max_delay_s, self.window_s)
        while self._windows:
            index = min(self._windows)
            window = self._windows[index]
            end = (index + 1) * self.window_s
            covered = {m: self.pending[m].frontier() >= end for m in MODALITIES}
            passed = window.passed_at is not None and now - window.passed_at >= self.max_delay_s
            if not (all(covered.values()) or passed or idle or flush):
                break
            del self._windows[index]
            self._next_index = index + 1
            in_media_order = window.results["video"] + window.results["audio"]
            for result in sorted(in_media_order, key=lambda r: (r.pts, r.modality)):
                self._step(result)
            out.append(self._record(window, covered))
        return out

    def _step(self, result: Result) -> None:
        """One result, in media order: events, A/V sync, tracks and zones, speech."""
        self.events.step(result)
        self.sync.step(result)
        if result.modality == "video" and self.scene.active:
            zones = self.scene.step(result)
            self.events.extend(self.scene.take_events())
            if zones is not None:
                self.events.step(zones)
        elif result.modality == "audio":
            self.speech.step(result)

    def close(self) -> None:
        """The stream ended and its last window went out: active events and tracks end."""
        self.scene.close()
        self.events.extend(self.scene.take_events())
        self.events.close(self.media_end)

    @property
    def complete(self) -> bool:
        """True when the stream ended and every window was published."""
        return (
            not self._windows
            and all(t.ended or not t.present for t in self.pending.values())
            and all(math.isinf(t.frontier()) for t in self.pending.values())
        )

    def correction(self, result: Result) -> dict[str, Any]:
        """A `correction.<stream>` message: a result that came after its window went out."""
        index = self._index(result.pts)
        return {
            "schema": CORRECTION_SCHEMA,
            "type": "correction",
            "stream": self.stream,
            "window": {
                "start": round(index * self.window_s, 6),
                "end": round((index + 1) * self.window_s, 6),
            },
            "modality": result.modality,
            "seq": result.seq,
            "pts": result.pts,
            "outputs": result.outputs,
            "errors": result.errors,
            "published_at": time.time(),
        }

    @property
    def media_end(self) -> float:
        """The end of the newest item received, media seconds."""
        return max(t.received_end for t in self.pending.values())

    def _index(self, pts: float) -> int:
        return int(pts // self.window_s)

    def _record(self, window: _Window, covered: dict[Modality, bool]) -> dict[str, Any]:
        results = window.results["video"] + window.results["audio"]
        walls = [r.wall for r in results]
        published = time.time()
        # Missing: not covered yet, or every item of the window was given up unanswered.
        missing = [
            m
            for m in MODALITIES
            if self.pending[m].present
            and (not covered[m] or (window.items[m] > 0 and not window.results[m]))
        ]
        record: dict[str, Any] = {
            "schema": RECORD_SCHEMA,
            "type": "fused",
            "stream": self.stream,
            "window": {
                "start": round(window.index * self.window_s, 6),
                "end": round((window.index + 1) * self.window_s, 6),
                "wall_start": min(walls) if walls else None,
                "wall_end": max(walls) if walls else None,
            },
            "missing": missing,
            "partial": bool(missing),
            "latency_s": round(published - max(walls), 6) if walls else None,
            "published_at": published,
            "events": self.events.window_events(),
            "av_sync": self.sync.estimate(),
        }
        for m in MODALITIES:
            record[m] = self._modality(window, m) if self.pending[m].present else None
        if self.scene.active:
            record |= self.scene.window()
        record |= self.speech.window(
            window.index * self.window_s, (window.index + 1) * self.window_s
        )
        return record

    def _modality(self, window: _Window, modality: Modality) -> dict[str, Any]:
        results = sorted(window.results[modality], key=lambda r: r.seq)
        return {
            "items": window.items[modality],
            "results": len(results),
            "lost": window.lost[modality],
            "errors": error_counts(results),
            "analyzers": summarize(results),
        }
