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
from operator import itemgetter

from daemon.geometry import iou as box_iou

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
        x0, y0, x1, y1 = self.box
        v0, v1, v2, v3 = self.velocity
        return _clamp(x0 + v0 * dt, y0 + v1 * dt, x1 + v2 * dt, y1 + v3 * dt)

    def update(self, detection: Detection, t: float) -> None:
        dt = t - self.last_seen
        box = detection.box
        if dt > 0:
            n0, n1, n2, n3 = box
            o0, o1, o2, o3 = self.box
            v0, v1, v2, v3 = self.velocity
            # Smoothed: one noisy box (motion regions grow and shrink) must not fling it.
            self.velocity = (
                0.5 * v0 + 0.5 * ((n0 - o0) / dt),
                0.5 * v1 + 0.5 * ((n1 - o1) / dt),
                0.5 * v2 + 0.5 * ((n2 - o2) / dt),
                0.5 * v3 + 0.5 * ((n3 - o3) / dt),
            )
        self.previous = (self.last_seen, self.box)
        self.box, self.score, self.last_seen = box, detection.score, t
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
        options = self.options
        elapsed = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t
        unmatched = self.tracks
        high = [d for d in detections if d.score >= options.high_score]
        low = [d for d in detections if d.score < options.high_score]
        for tier, threshold in ((high, options.min_similarity), (low, 0.3)):
            if not tier or not unmatched:
                continue
            matched = self._match(unmatched, tier, t, threshold)
            if not matched:
                continue
            for track, detection in matched:
                track.update(detection, t)
                if track.hits >= options.min_hits:
                    out.seen.append(track)
            # Identity, not equality: each track and detection is matched at most once.
            used_tracks = {id(track) for track, _ in matched}
            used = {id(detection) for _, detection in matched}
            unmatched = [track for track in unmatched if id(track) not in used_tracks]
            tier[:] = [d for d in tier if id(d) not in used]
        gone: set[int] = set()
        for track in unmatched:
            track.unmatched_s += elapsed
            tentative = track.hits < options.min_hits
            if tentative or track.unmatched_s > options.lost_after_s:
                gone.add(id(track))
                if not tentative:
                    out.ended.append(track)
        if gone:
            self.tracks = [track for track in self.tracks if id(track) not in gone]
        for detection in high:
            if detection.score >= options.new_score:
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
        pairs = _pairs(tracks, detections, t, threshold)
        pairs.sort(key=_RANK)
        used_tracks: set[int] = set()
        used_detections: set[int] = set()
        matched = []
        for _, track_id, _, track, detection in pairs:
            if track_id in used_tracks or id(detection) in used_detections:
                continue
            used_tracks.add(track_id)
            used_detections.add(id(detection))
            matched.append((track, detection))
        return matched


def _pairs(
    tracks: list[TrackedObject], detections: list[Detection], t: float, threshold: float
) -> list[tuple[float, int, int, TrackedObject, Detection]]:
    """Every (track, detection) pair of a label at least `threshold` similar, as
    (-similarity, track id, n): ties go to the lower track id, then detection order (n).

    The tracker's inner loop: _similarity inlined, with each box's area, centre and
    diagonal computed once (the same arithmetic, so the same figures). A pair whose
    centres are further apart across or down than their mean diagonal neither overlaps
    nor scores above 0 by distance, so it is skipped unseen when the threshold is above 0."""
    hypot = math.hypot
    candidates = []
    widest = 0.0
    for n, d in enumerate(detections):
        b0, b1, b2, b3 = d.box
        b_diagonal = hypot(b2 - b0, b3 - b1)
        widest = max(widest, b_diagonal)
        candidates.append(
            (d.label, (b0 + b2) / 2, (b1 + b3) / 2, b0, b1, b2, b3, (b2 - b0) * (b3 - b1),
             b_diagonal, n, d)
        )  # fmt: skip
    prune = threshold > 0
    pairs: list[tuple[float, int, int, TrackedObject, Detection]] = []
    for track in tracks:
        label = track.label
        a0, a1, a2, a3 = track.predicted(t)
        area = (a2 - a0) * (a3 - a1)
        ax, ay = (a0 + a2) / 2, (a1 + a3) / 2
        diagonal = hypot(a2 - a0, a3 - a1)
        # With a margin for rounding: only pairs that surely score 0 are skipped.
        reach = (diagonal + widest) / 2 * (1 + 1e-6) + 1e-9
        for b_label, bx, by, b0, b1, b2, b3, b_area, b_diagonal, n, detection in candidates:
            if b_label != label or (
                prune and not (-reach < ax - bx < reach and -reach < ay - by < reach)
            ):
                continue
            w = (b2 if b2 < a2 else a2) - (b0 if b0 > a0 else a0)  # min(a2, b2) - max(a0, b0)
            h = (b3 if b3 < a3 else a3) - (b1 if b1 > a1 else a1)
            iou = 0.0
            if w > 0 and h > 0:
                inter = w * h
                union = area + b_area - inter
                iou = inter / union if union > 0 else 0.0
            if iou > 0:
                similarity = 0.5 + 0.5 * iou
            else:
                size = (diagonal + b_diagonal) / 2
                if size <= 0:
                    similarity = 0.0
                else:
                    similarity = 0.5 * (1 - hypot(ax - bx, ay - by) / size)
                    if not similarity > 0.0:  # max(0.0, similarity)
                        similarity = 0.0
            if similarity >= threshold:
                pairs.append((-similarity, track.id, n, track, detection))
    return pairs


_RANK = itemgetter(0, 1, 2)  # (-similarity, track id, n)


def _similarity(a: Box, b: Box) -> float:
    """IoU; for boxes that do not overlap, up to 0.5 falling to 0 as their centres move
    apart by their mean diagonal."""
    iou = box_iou(a, b)
    if iou > 0:
        return 0.5 + 0.5 * iou
    (ax, ay), (bx, by) = _centre(a), _centre(b)
    size = (math.hypot(a[2] - a[0], a[3] - a[1]) + math.hypot(b[2] - b[0], b[3] - b[1])) / 2
    if size <= 0:
        return 0.0
    return max(0.0, 0.5 * (1 - math.hypot(ax - bx, ay - by) / size))


def _centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _clamp(a: float, b: float, c: float, d: float) -> Box:
    """Each coordinate into 0..1 (as min(max(v, 0.0), 1.0))."""
    return (
        0.0 if a < 0.0 else 1.0 if a > 1.0 else a,
        0.0 if b < 0.0 else 1.0 if b > 1.0 else b,
        0.0 if c < 0.0 else 1.0 if c > 1.0 else c,
        0.0 if d < 0.0 else 1.0 if d > 1.0 else d,
    )
