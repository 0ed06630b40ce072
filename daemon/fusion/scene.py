"""What moves in one stream: tracks of its box analyzers, zone occupancy, line crossings.

Stepped by the stream's fusion with each video result in media order (daemon/fusion/
fuser.py). For each window it reports the tracks seen, the most tracks of each label
that were in each zone at once, and the line crossings per direction; crossings and
zone entries and exits go out as instant events. Zone counts also reach the event
rules, as the outputs of a virtual analyzer `zones` named `<zone>.<label>`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from daemon.fusion.tracker import (
    Detection,
    FrameTracks,
    ObjectTracker,
    TrackedObject,
    TrackerOptions,
)
from daemon.fusion.zones import (
    LineConfig,
    ZoneConfig,
    anchor_point,
    boundary,
    crossing,
    inside,
)
from daemon.wire.protocol import Result

EVENT_SCHEMA = 1
ZONES_ANALYZER = "zones"
# The label of an analyzer's boxes when its output has no `labels`.
DEFAULT_LABELS = {"faces": "face", "persons": "person", "motion": "motion"}


@dataclass
class _WindowScene:
    # track id -> (analyzer, the track, ended): summarised when the window goes out, as
    # the track stood at its last sighting in the window (later frames are not stepped yet)
    tracks: dict[int, tuple[str, TrackedObject, bool]] = field(default_factory=dict)
    occupancy: dict[str, dict[str, int]] = field(default_factory=dict)
    crossings: dict[str, dict[str, int]] = field(default_factory=dict)


class StreamScene:
    def __init__(
        self,
        stream: str,
        track: Iterable[str],
        zones: Iterable[ZoneConfig] = (),
        lines: Iterable[LineConfig] = (),
        options: TrackerOptions | None = None,
    ) -> None:
        self.stream = stream
        ids = [0]  # one counter: a track id is unique within the stream
        self.trackers = {a: ObjectTracker(options or TrackerOptions(), ids) for a in track}
        self.zones = list(zones)
        self.lines = list(lines)
        # Per frame and track, in the loops below: what each shape needs, computed once.
        self._zone_shapes = [
            # An anchor right of the polygon's rightmost vertex is outside it (the margin
            # covers rounding in inside()'s edge crossings).
            (z, z.anchor == "bottom_center", max(x for x, _ in z.polygon) + 1e-9)
            for z in self.zones
        ]
        self._line_shapes = [
            (
                ln,
                ln.anchor == "bottom_center",
                ln.a[0],
                ln.a[1],
                ln.b[0] - ln.a[0],
                ln.b[1] - ln.a[1],
            )
            for ln in self.lines
        ]
        self._members: dict[tuple[str, int], float] = {}  # (zone, track) -> entered at
        self._totals = {ln.name: {"in": 0, "out": 0} for ln in self.lines}
        self._events: list[dict[str, Any]] = []
        self._event_count = 0
        self._window = self._new_window()

    @property
    def active(self) -> bool:
        return bool(self.trackers)

    def step(self, result: Result) -> Result | None:
        """One video result; returns the `zones` result for the event rules, if any."""
        changed = False
        for analyzer, tracker in self.trackers.items():
            outputs = result.outputs.get(analyzer)
            if outputs is None:
                continue  # failed or skipped on this frame: no observation
            if outputs.get("gated") is True:
                tracker.coast(result.pts)  # the gate saw no motion: the tracks stay put
                continue
            frame = tracker.step(result.pts, _detections(analyzer, outputs))
            self._apply(analyzer, frame, result.pts)
            changed = True
        if not changed or not self.zones:
            return None
        counts = self._zone_counts()
        for zone, labels in counts.items():
            seen = self._window.occupancy.setdefault(zone, {})
            for label, n in labels.items():
                seen[label] = max(seen.get(label, 0), n)
        outputs = {f"{z}.{label}": n for z, labels in counts.items() for label, n in labels.items()}
        return Result(
            v=result.v,
            stream=result.stream,
            modality="video",
            seq=result.seq,
            pts=result.pts,
            wall=result.wall,
            outputs={ZONES_ANALYZER: dict(outputs)},
            infer_s=0.0,
        )

    def take_events(self) -> list[dict[str, Any]]:
        out, self._events = self._events, []
        return out

    def window(self) -> dict[str, Any]:
        """The window's tracks, zone occupancy and line counts; then a new window starts."""
        w, self._window = self._window, self._new_window()
        return {
            "tracks": [_summary(*w.tracks[i]) for i in sorted(w.tracks)],
            "zones": w.occupancy,
            "lines": {
                name: counts | {f"{d}_total": n for d, n in self._totals[name].items()}
                for name, counts in w.crossings.items()
            },
        }

    def close(self) -> None:
        """The stream ended: its tracks end, and leave their zones."""
        for analyzer, tracker in self.trackers.items():
            ended = tracker.close()
            self._apply(
                analyzer, FrameTracks(ended=ended), max((t.last_seen for t in ended), default=0.0)
            )

    # -- internals ------------------------------------------------------------------
    def _new_window(self) -> _WindowScene:
        w = _WindowScene()
        w.occupancy = {z.name: {} for z in self.zones}
        w.crossings = {ln.name: {"in": 0, "out": 0} for ln in self.lines}
        return w

    def _apply(self, analyzer: str, frame: FrameTracks, t: float) -> None:
        for track in frame.seen:
            self._window.tracks[track.id] = (analyzer, track, False)
            self._zones_seen(analyzer, track, t)
            self._lines_seen(analyzer, track, t)
        for track in frame.ended:
            self._window.tracks[track.id] = (analyzer, track, True)
            for zone in self.zones:
                if (zone.name, track.id) in self._members:
                    # Gone since its last sighting, not since it was given up.
                    self._leave(zone, analyzer, track, track.last_seen)

    def _zones_seen(self, analyzer: str, track: TrackedObject, t: float) -> None:
        box = track.box
        x = (box[0] + box[2]) / 2  # anchor_point(), inlined
        for zone, bottom, right in self._zone_shapes:
            if zone.analyzers and analyzer not in zone.analyzers:
                continue
            point = (x, box[3]) if bottom else (x, (box[1] + box[3]) / 2)
            now_in = x <= right and inside(point, zone.polygon)
            was_in = (zone.name, track.id) in self._members
            if now_in == was_in:
                continue
            when = self._zone_edge_time(zone, track, point, t)
            if now_in:
                self._members[(zone.name, track.id)] = when
                self._event("zone_enter", when, analyzer, track, zone=zone.name)
            else:
                self._leave(zone, analyzer, track, when)

    @staticmethod
    def _zone_edge_time(
        zone: ZoneConfig, track: TrackedObject, point: tuple[float, float], t: float
    ) -> float:
        """When the track passed the zone's edge: between its last two sightings, where
        the straight move between them crosses it. A track already inside at its
        sighting before (just confirmed) entered then."""
        if track.previous is None:
            return t
        t0, box0 = track.previous
        before = anchor_point(box0, zone.anchor)
        if inside(before, zone.polygon) == inside(point, zone.polygon):
            return t0
        return t0 + (t - t0) * boundary(zone.polygon, before, point)

    def _leave(self, zone: ZoneConfig, analyzer: str, track: TrackedObject, t: float) -> None:
        entered = self._members.pop((zone.name, track.id))
        dwell = round(max(0.0, t - entered), 6)
        self._event("zone_leave", t, analyzer, track, zone=zone.name, dwell_s=dwell)

    def _lines_seen(self, analyzer: str, track: TrackedObject, t: float) -> None:
        if track.previous is None:
            return
        t0, box0 = track.previous
        box = track.box
        x0, x1 = (box0[0] + box0[2]) / 2, (box[0] + box[2]) / 2  # anchor_point(), inlined
        for line, bottom, ax, ay, dx, dy in self._line_shapes:
            if line.analyzers and analyzer not in line.analyzers:
                continue
            if bottom:
                y0, y1 = box0[3], box[3]
            else:
                y0, y1 = (box0[1] + box0[3]) / 2, (box[1] + box[3]) / 2
            # Which side of the line each anchor is on, as zones.crossing() computes it:
            # most moves stay on one side, and only a move that changes sides is looked at.
            side0 = dx * (y0 - ay) - dy * (x0 - ax)
            side1 = dx * (y1 - ay) - dy * (x1 - ax)
            if side0 == 0 or side1 == 0 or (side0 > 0) == (side1 > 0):
                continue
            crossed = crossing(line, (x0, y0), (x1, y1))
            if crossed is not None:
                direction, fraction = crossed
                self._window.crossings[line.name][direction] += 1
                self._totals[line.name][direction] += 1
                when = t0 + (t - t0) * fraction
                self._event(
                    "line_crossed", when, analyzer, track, line=line.name, direction=direction
                )

    def _zone_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {z.name: {} for z in self.zones}
        if not self._members:
            return counts
        labels = {t.id: t.label for tracker in self.trackers.values() for t in tracker.tracks}
        for zone, track_id in self._members:
            label = labels.get(track_id)
            if label is not None:
                counts[zone][label] = counts[zone].get(label, 0) + 1
        return counts

    def _event(
        self, name: str, t: float, analyzer: str, track: TrackedObject, **detail: Any
    ) -> None:
        self._event_count += 1
        self._events.append(
            {
                "schema": EVENT_SCHEMA,
                "type": "event",
                "stream": self.stream,
                "name": name,
                "id": f"{self.stream}/{name}/{self._event_count}",
                "edge": "instant",
                "start": round(t, 6),
                "end": round(t, 6),
                "duration_s": 0.0,
                "ended_by": None,
                "at": time.time(),
                "track_id": track.id,
                "label": track.label,
                "analyzer": analyzer,
                "box": list(track.box),
                **detail,
            }
        )


def _detections(analyzer: str, outputs: dict[str, Any]) -> list[Detection]:
    boxes = outputs.get("boxes") or []
    if not boxes:
        return []
    scores = outputs.get("scores") or []
    labels = outputs.get("labels") or []
    default = DEFAULT_LABELS.get(analyzer, analyzer)
    out = []
    for i, box in enumerate(boxes):
        if not (isinstance(box, list) and len(box) == 4):
            continue
        score = scores[i] if i < len(scores) and isinstance(scores[i], (int, float)) else 1.0
        label = labels[i] if i < len(labels) and isinstance(labels[i], str) else default
        x0, y0, x1, y1 = box
        out.append(Detection((float(x0), float(y0), float(x1), float(y1)), label, float(score)))
    return out


def _summary(analyzer: str, track: TrackedObject, ended: bool) -> dict[str, Any]:
    return {
        "id": track.id,
        "analyzer": analyzer,
        "label": track.label,
        "box": [round(v, 4) for v in track.box],
        "score": round(track.score, 4),
        "best_score": round(track.best_score, 4),
        "first_seen": round(track.first_seen, 6),
        "last_seen": round(track.last_seen, 6),
        "ended": ended,
    }
