"""The motion gate of a box or label analyzer (the model-backed ones, faces, persons,
plugins with `GateOptions`): a cascade that spends a forward only on frames that
changed. Per stream it keeps a coarse copy of the last frame; a frame goes to the
analyzer when enough of it changed, when the stream has no result yet (first frame, or
after a gap), or when its last run is older than `refresh_s`.

With regions on, a frame that goes to the model because part of it changed also gets
the region to look at: the box around the changed pixels, widened by a margin, to at
least `min_side` of the frame and, for a model with a fixed input size, to the frame's
aspect ratio (so that it scales the region evenly); None (the whole frame) when that box
is over `max_area` of the frame, or when the frame runs for another reason.

With camera motion on as well, a frame whose changed pixels span too much for a region
(a panning or shaking camera: the whole picture moved) is compared once more with the
last frame shifted by the picture's estimated motion (phase correlation of the two
frames' edges, sub-pixel). What still differs moved against the picture: it is searched
as a region, and so is the edge the camera uncovered since the last whole-frame run
(widened by the margin, so that an object cut by the edge then is found whole). The
analyzer carries its last boxes along with the picture. When the estimate is unsure or
too much still differs (a zoom, a turn, a crowd) the whole frame runs, as without it."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cache

import cv2
import numpy as np

from daemon.geometry import area, around, overlaps
from daemon.workers.analyzers.base import WorkItem
from daemon.workers.analyzers.gate_options import GateOptions
from daemon.workers.analyzers.pixels import changed_mask
from daemon.workers.analyzers.state import PerStream, continues

STEP = 4  # compare every 4th pixel of every 4th row: 1/16 of the work, same answer
# Camera motion is estimated on edges about this wide: at 640 x 360 within 0.1 pixel for
# 2 ms a frame (at 160 wide, errors of half a pixel leave edges everywhere differing).
EDGE_WIDTH = 320
TILES = 3  # the shift is estimated per tile of a 3 x 3 grid; most must agree
MIN_RESPONSE = 0.1  # a tile whose phase correlation peaks lower has no clear shift
MIN_SHIFT_PX = 0.5  # a smaller shift is no camera motion: the change is something else
MAX_SHIFT = 0.25  # of the frame's side between two frames: beyond it, the whole frame
MIN_EDGE_PX = 1.0  # an uncovered edge narrower than this hides nothing (estimate noise)
MAX_MOVERS = 4  # separate things that moved against the picture, each its own region
_OPEN = np.ones((3, 3), np.uint8)
_NEAR = np.ones((5, 5), np.uint8)  # coarse cells: 20 pixels of the frame either way
REGROW = 3

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, end exclusive


@dataclass(frozen=True, slots=True)
class RegionRule:
    margin: float = 0.1  # of the frame's side, added around the changed pixels
    min_side: float = 0.25  # a region is at least this share of each side
    max_area: float = 0.5  # a larger region: the whole frame runs
    # Widened to the frame's aspect ratio, for a model with a fixed input size; an
    # analyzer that looks at a crop at the frame's own pixels (faces, persons) needs not.
    frame_aspect: bool = True


@dataclass(frozen=True, slots=True)
class CameraMove:
    """The whole picture moved (a panning or shaking camera)."""

    shift: tuple[float, float]  # pixels it moved since the stream's last frame (x, y)
    regions: tuple[Box, ...]  # what moved against it, and the edge it uncovered


@dataclass(frozen=True, slots=True)
class Decision:
    run: bool
    region: Box | None = None  # where to look; None: the whole frame (or `camera`'s)
    camera: CameraMove | None = None  # where to look when the whole picture moved


@dataclass(frozen=True, slots=True)
class Picture:
    """What camera motion is estimated from: an area-averaged copy on the coarse grid
    (compared after the shift) and the edges (the shift's estimate)."""

    small: np.ndarray
    edges: np.ndarray


@dataclass(slots=True)
class _Seen:
    seq: int
    pts: float
    coarse: np.ndarray
    last_run_pts: float
    picture: Picture | None = None  # with camera motion on
    drift: tuple[float, float] = field(default=(0.0, 0.0))  # moved since the last whole run


class MotionGate:
    def __init__(
        self,
        min_score: float,
        pixel_threshold: int,
        refresh_s: float,
        regions: RegionRule | None = None,
        camera: bool = False,
    ) -> None:
        self.min_score = min_score
        self.pixel_threshold = pixel_threshold
        self.refresh_s = refresh_s
        self.regions = regions
        self.camera = camera and regions is not None
        self._seen: PerStream[_Seen] = PerStream()

    def decide(self, item: WorkItem, has_result: bool) -> Decision:
        """Whether `item` goes to the model, and where to look; call in stream order,
        once per item."""
        # A copy: a view would keep the whole frame (a ZeroMQ buffer) alive per stream.
        coarse = np.ascontiguousarray(item.array[::STEP, ::STEP])
        picture = picture_of(item, coarse.shape) if self.camera else None
        seen = self._seen.get(item.stream)
        changed = None
        run = (
            not has_result
            or seen is None
            or seen.coarse.shape != coarse.shape
            or not continues(seen.seq, seen.pts, item.seq, item.pts, max_gap_s=self.refresh_s)
            or item.pts - seen.last_run_pts >= self.refresh_s
        )
        if not run and seen is not None:
            changed = self._changed(seen.coarse, coarse)
            run = cv2.countNonZero(changed) / changed.size > self.min_score
        decision = self._where(item, seen, changed, picture) if run else Decision(False)
        whole = run and decision.region is None and decision.camera is None
        last_run = item.pts if run or seen is None else seen.last_run_pts
        drift = (0.0, 0.0) if whole or seen is None else seen.drift
        if decision.camera is not None:
            drift = (drift[0] + decision.camera.shift[0], drift[1] + decision.camera.shift[1])
        self._seen.put(item.stream, _Seen(item.seq, item.pts, coarse, last_run, picture, drift))
        return decision

    def _where(
        self, item: WorkItem, seen: _Seen | None, changed: np.ndarray | None, now: Picture | None
    ) -> Decision:
        """Where a frame that runs looks: a region, the camera's regions, or all of it."""
        if changed is None or self.regions is None or seen is None:
            return Decision(True)
        height, width = item.array.shape[:2]
        region = region_of(changed, width, height, self.regions)
        if region is not None or now is None or seen.picture is None:
            return Decision(True, region)
        move = camera_move(
            seen.picture, now, seen.drift, (width, height), self.regions, self.pixel_threshold
        )
        return Decision(True, camera=move)

    def _changed(self, before: np.ndarray, now: np.ndarray) -> np.ndarray:
        return changed_mask(cv2.absdiff(before, now), self.pixel_threshold)


def gate_for(options: GateOptions) -> MotionGate | None:
    """The gate the options ask for; None when the analyzer runs on every frame."""
    if options.gate == "none":
        return None
    rule = None
    if options.gate == "motion_regions":
        rule = RegionRule(
            options.gate_region_margin,
            options.gate_region_min_side,
            options.gate_region_max_area,
            frame_aspect=type(options).region_frame_aspect,
        )
    return MotionGate(
        options.gate_min_score,
        options.gate_pixel_threshold,
        options.gate_refresh_s,
        rule,
        camera=options.gate_camera_motion,
    )


def region_of(changed: np.ndarray, width: int, height: int, rule: RegionRule) -> Box | None:
    """The region around the changed cells of a coarse mask (see the module docstring)."""
    rows = np.flatnonzero(changed.any(axis=1))
    cols = np.flatnonzero(changed.any(axis=0))
    if rows.size == 0:
        return None
    # A coarse cell stands for the STEP x STEP pixels from its corner.
    x0, x1 = int(cols[0]) * STEP, min(width, (int(cols[-1]) + 1) * STEP)
    y0, y1 = int(rows[0]) * STEP, min(height, (int(rows[-1]) + 1) * STEP)
    share_x = max((x1 - x0) / width + 2 * rule.margin, rule.min_side)
    share_y = max((y1 - y0) / height + 2 * rule.margin, rule.min_side)
    if rule.frame_aspect:
        share_x = share_y = max(share_x, share_y)
    if share_x * share_y > rule.max_area:
        return None
    w, h = min(width, round(share_x * width)), min(height, round(share_y * height))
    left = min(max(0, round((x0 + x1 - w) / 2)), width - w)
    top = min(max(0, round((y0 + y1 - h) / 2)), height - h)
    return left, top, left + w, top + h


# The last items' pictures: every gate of a worker (faces, persons) needs the same one
# per item, each gate in turn over a batch of up to `capacity` items. Keyed by identity
# and place in the stream, so that the cache holds no frame alive.
_PICTURES = 8
_pictures: OrderedDict[tuple[str, int, float, int], Picture] = OrderedDict()


def picture_of(item: WorkItem, coarse_shape: tuple[int, ...]) -> Picture:
    """The item's Picture (computed once per item for all gates)."""
    key = (item.stream, item.seq, item.pts, id(item.data))
    known = _pictures.get(key)
    if known is not None:
        return known
    frame = item.array
    height, width = frame.shape[:2]
    small = cv2.resize(frame, (coarse_shape[1], coarse_shape[0]), interpolation=cv2.INTER_AREA)
    scale = min(1.0, EDGE_WIDTH / width)
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    gray = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)
    # Edges, not brightness: a ramp or a lighting change would pull the estimate to 0.
    edges = cv2.magnitude(
        cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    )
    picture = Picture(small, edges)
    _pictures[key] = picture
    while len(_pictures) > _PICTURES:
        _pictures.popitem(last=False)
    return picture


@cache
def _window(width: int, height: int) -> np.ndarray:
    return cv2.createHanningWindow((width, height), cv2.CV_32F)


def camera_move(
    before: Picture,
    now: Picture,
    drift: tuple[float, float],
    size: tuple[int, int],
    rule: RegionRule,
    threshold: int,
) -> CameraMove | None:
    """The picture's shift since `before` and the regions to search, or None (search the
    whole frame) when no shift explains the change (see the module docstring). `drift`:
    its shift since the stream's last whole-frame run, before this one."""
    width, height = size
    if now.edges.shape != before.edges.shape or now.small.shape != before.small.shape:
        return None
    edge_h, edge_w = now.edges.shape
    found = picture_shift(before.edges, now.edges)
    if found is None:
        return None
    sx, sy = found[0] * width / edge_w, found[1] * height / edge_h
    if (
        math.hypot(sx, sy) < MIN_SHIFT_PX
        or abs(sx) > MAX_SHIFT * width
        or abs(sy) > MAX_SHIFT * height
    ):
        return None
    moved = moved_against(before.small, now.small, (sx, sy), size, threshold)
    if cv2.countNonZero(moved) / moved.size > rule.max_area:
        return None
    regions = movers(moved, size, rule)
    if regions is None:
        return None
    regions += uncovered((drift[0] + sx, drift[1] + sy), size, rule.margin)
    regions = disjoint(regions)
    if sum(area(r) for r in regions) > rule.max_area * width * height:
        return None
    return CameraMove((sx, sy), tuple(regions))


def picture_shift(before: np.ndarray, now: np.ndarray) -> tuple[float, float] | None:
    """How far the picture moved between two edge images: the shift most of a grid of
    tiles agree on (within a pixel; their median), so that one large, contrasty thing
    moving on its own does not pass for the picture; None when no shift has most tiles
    behind it."""
    height, width = now.shape
    th, tw = height // TILES, width // TILES
    window = _window(tw, th)
    shifts: list[tuple[float, float]] = []
    for y in range(0, TILES * th, th):
        for x in range(0, TILES * tw, tw):
            tile = (slice(y, y + th), slice(x, x + tw))
            shift, response = cv2.phaseCorrelate(before[tile], now[tile], window)
            if response >= MIN_RESPONSE:
                shifts.append((shift[0], shift[1]))
    best: list[tuple[float, float]] = []
    for sx, sy in shifts:
        near = [s for s in shifts if abs(s[0] - sx) <= 1 and abs(s[1] - sy) <= 1]
        if len(near) > len(best):
            best = near
    if 2 * len(best) <= TILES * TILES:
        return None
    return float(np.median([s[0] for s in best])), float(np.median([s[1] for s in best]))


def moved_against(
    before: np.ndarray,
    now: np.ndarray,
    shift: tuple[float, float],
    size: tuple[int, int],
    threshold: int,
) -> np.ndarray:
    """Coarse mask of what changed once `before` is moved by `shift` (frame pixels)."""
    rows, cols = now.shape[:2]
    dx, dy = shift[0] * cols / size[0], shift[1] * rows / size[1]
    warp = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    moved = cv2.warpAffine(
        before, warp, (cols, rows), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    raw = changed_mask(cv2.absdiff(moved, now), threshold)
    # One-cell lines along edges are the interpolation's error, not motion: opened away,
    # then the thin parts that hang on what is left (a leg, an arm) grown back.
    mask = cv2.morphologyEx(raw, cv2.MORPH_OPEN, _OPEN)
    for _ in range(REGROW):
        mask = cv2.bitwise_and(cv2.dilate(mask, _NEAR), raw)
    # The cells the camera uncovered have no "before": uncovered() searches them.
    bx, by = math.ceil(abs(dx)) + 1, math.ceil(abs(dy)) + 1
    mask[:, :bx] = mask[:, cols - bx :] = 0
    mask[:by, :] = mask[rows - by :, :] = 0
    return mask


def movers(moved: np.ndarray, size: tuple[int, int], rule: RegionRule) -> list[Box] | None:
    """A region around each separate thing in the coarse mask (cells within the margin of
    each other are one thing); None when there are too many or one is too large."""
    width, height = size
    reach = max(1, round(rule.margin * moved.shape[1]))
    near = cv2.dilate(moved, np.ones((reach, reach), np.uint8))
    count, labels = cv2.connectedComponents(near, connectivity=8)
    if count - 1 > MAX_MOVERS:
        return None
    regions: list[Box] = []
    for label in range(1, count):
        region = region_of(((labels == label) & (moved > 0)).astype(np.uint8), width, height, rule)
        if region is None:
            return None
        regions.append(region)
    return regions


def uncovered(drift: tuple[float, float], size: tuple[int, int], margin: float) -> list[Box]:
    """The edges of the frame a picture that moved by `drift` pixels brought in (content
    moved right: the left edge is new), widened by `margin` of the frame's side."""
    width, height = size
    boxes: list[Box] = []
    sx, sy = drift
    if abs(sx) >= MIN_EDGE_PX:
        span = min(width, math.ceil(abs(sx) + margin * width))
        boxes.append((0, 0, span, height) if sx > 0 else (width - span, 0, width, height))
    if abs(sy) >= MIN_EDGE_PX:
        span = min(height, math.ceil(abs(sy) + margin * height))
        boxes.append((0, 0, width, span) if sy > 0 else (0, height - span, width, height))
    return boxes


def disjoint(boxes: list[Box]) -> list[Box]:
    """The boxes, each overlapping pair whose surrounding box is no larger than the two
    together replaced by that box (else both stay: their overlap is searched twice)."""
    merged = list(boxes)
    joined = True
    while joined:
        joined = False
        for i, j in ((a, b) for a in range(len(merged)) for b in range(a + 1, len(merged))):
            a, b = merged[i], merged[j]
            both = around([a, b])
            if overlaps(a, b) and area(both) <= area(a) + area(b):
                merged[i] = (int(both[0]), int(both[1]), int(both[2]), int(both[3]))
                del merged[j]
                joined = True
                break
    return merged
