"""Identity across frames: a small multi-object tracker of the SORT/ByteTrack class.

Written here rather than taken from a library: norfair pins numpy < 2, `trackers`
requires the GUI build of opencv-python beside our headless one, and supervision
deprecated its ByteTrack in 0.28 and removed it in 0.31 (moved to `trackers`).

It runs in tandemd, inside each stream's fusion (daemon/fusion/fuser.py), on results in
media order as windows are published. So its state is per stream by construction and
survives a stream's items going to another worker; a frame gated by motion (`gated`
true: the worker repeated its last answer) or lost on the way is no observation: tracks
coast through it instead of ageing. Boxes are [x0, y0, x1, y1] in 0..1 of the frame.

Association, per label: tracks are predicted to the frame's media time with their
velocity; detections of at least `high_score` are matched first, the rest second to the
tracks still unmatched (ByteTrack's second pass), greedily by similarity: the IoU of the
predicted box with the detection, or, for boxes that do not overlap (a small object
moving fast at a low analysis fps), a score falling with the distance of their centres
relative to their size. A track needs `min_hits` matches to be reported, and ends after
`lost_after_s` of media time unmatched on analysed frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class TrackerOptions:
    high_score: float = 0.5  # first-pass detections; the rest only extend existing tracks
    new_score: float = 0.5  # a detection below this never starts a track
    min_similarity: float = 0.1
    min_hits: int = 2
    lost_after_s: float = 1.0
    max_tracks: int = 256  # per stream and analyzer: the bound on the tracker's memory


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box
    label: str
    score: float


@dataclass(slots=True)
class TrackedObject:
    id: int
    label: str
    box: Box
    score: float
    best_score: float
    first_seen: float
    last_seen: float
    hits: int = 1
    unmatched_s: float = 0.0
    velocity: Box = (0.0, 0.0, 0.0, 0.0)  # per media second
    previous: tuple[float, Box] | None = None  # (media time, box) of the sighting before

    def predicted(self, t: float) -> Box:
        dt = t - self.last_seen
        return _box(tuple(c + v * dt for c, v in zip(self.box, self.velocity, strict=True)))

    def update(self, detection: Detection, t: float) -> None:
        dt = t - self.last_seen
        if dt > 0:
            seen = tuple((new - old) / dt for new, old in zip(detection.box, self.box, strict=True))
            # Smoothed: one noisy box (motion regions grow and shrink) must not fling it.
            self.velocity = _box(
                tuple(0.5 * v + 0.5 * s for v, s in zip(self.velocity, seen, strict=True)),
                clamp=False,
            )
        self.previous = (self.last_seen, self.box)
        self.box, self.score, self.last_seen = detection.box, detection.score, t
        self.best_score = max(self.best_score, detection.score)
        self.hits += 1
        self.unmatched_s = 0.0


@dataclass
class FrameTracks:
    """What one analysed frame did to the tracks."""

    seen: list[TrackedObject] = field(default_factory=list)  # confirmed, matched now
    ended: list[TrackedObject] = field(default_factory=list)  # confirmed tracks that ended


class ObjectTracker:
    """The tracks of one stream's boxes from one analyzer; `ids` is shared by the
    stream's trackers so a track id is unique within the stream."""

    def __init__(self, options: TrackerOptions, ids: list[int]) -> None:
        self.options = options
        self._ids = ids
        self.tracks: list[TrackedObject] = []
        self._last_t: float | None = None

    def step(self, t: float, detections: list[Detection]) -> FrameTracks:
        """One analysed (not gated) frame at media time `t`."""
        out = FrameTracks()
        elapsed = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t
        unmatched = list(self.tracks)
        high = [d for d in detections if d.score >= self.options.high_score]
        low = [d for d in detections if d.score < self.options.high_score]
        for tier, threshold in ((high, self.options.min_similarity), (low, 0.3)):
            for track, detection in self._match(unmatched, tier, t, threshold):
                track.update(detection, t)
                unmatched.remove(track)
                tier.remove(detection)
                if track.hits >= self.options.min_hits:
                    out.seen.append(track)
        for track in unmatched:
            track.unmatched_s += elapsed
            tentative = track.hits < self.options.min_hits
            if tentative or track.unmatched_s > self.options.lost_after_s:
                self.tracks.remove(track)
                if not tentative:
                    out.ended.append(track)
        for detection in high:
            if detection.score >= self.options.new_score:
                self._start(detection, t, out)
        return out

    def coast(self, t: float) -> None:
        """A frame the motion gate skipped at media time `t`: nothing moved, so every track
        stays where it was (velocity 0) and none ages."""
        for track in self.tracks:
            track.velocity = (0.0, 0.0, 0.0, 0.0)
        self._last_t = t if self._last_t is None else max(self._last_t, t)

    def close(self) -> list[TrackedObject]:
        """The stream ended: every confirmed track ends."""
        ended = [t for t in self.tracks if t.hits >= self.options.min_hits]
        self.tracks = []
        return ended

    def _start(self, detection: Detection, t: float, out: FrameTracks) -> None:
        if len(self.tracks) >= self.options.max_tracks:
            return
        self._ids[0] += 1
        track = TrackedObject(
            self._ids[0], detection.label, detection.box, detection.score, detection.score, t, t
        )
        self.tracks.append(track)
        if track.hits >= self.options.min_hits:
            out.seen.append(track)

    @staticmethod
    def _match(
        tracks: list[TrackedObject], detections: list[Detection], t: float, threshold: float
    ) -> list[tuple[TrackedObject, Detection]]:
        """Greedy matching by similarity, best pair first, same label only."""
        pairs = []
        for track in tracks:
            predicted = track.predicted(t)
            for detection in detections:
                if detection.label != track.label:
                    continue
                similarity = _similarity(predicted, detection.box)
                if similarity >= threshold:
                    pairs.append((similarity, track.id, track, detection))
        pairs.sort(key=lambda p: (-p[0], p[1]))
        used_tracks: set[int] = set()
        used_detections: set[int] = set()
        matched = []
        for _, _, track, detection in pairs:
            if track.id in used_tracks or id(detection) in used_detections:
                continue
            used_tracks.add(track.id)
            used_detections.add(id(detection))
            matched.append((track, detection))
        return matched


def _similarity(a: Box, b: Box) -> float:
    """IoU; for boxes that do not overlap, up to 0.5 falling to 0 as their centres move
    apart by their mean diagonal."""
    iou = _iou(a, b)
    if iou > 0:
        return 0.5 + 0.5 * iou
    (ax, ay), (bx, by) = _centre(a), _centre(b)
    size = (math.hypot(a[2] - a[0], a[3] - a[1]) + math.hypot(b[2] - b[0], b[3] - b[1])) / 2
    if size <= 0:
        return 0.0
    return max(0.0, 0.5 * (1 - math.hypot(ax - bx, ay - by) / size))


def _iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _box(values: tuple[float, ...], clamp: bool = True) -> Box:
    a, b, c, d = values
    if clamp:
        return (
            min(max(a, 0.0), 1.0),
            min(max(b, 0.0), 1.0),
            min(max(c, 0.0), 1.0),
            min(max(d, 0.0), 1.0),
        )
    return (a, b, c, d)
