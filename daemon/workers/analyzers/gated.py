"""The motion gate around an analyzer that does not gate itself: faces, persons, and
plugins whose options derive from `GateOptions` (the model-backed analyzers gate their
batches themselves, model_base.py).

Per stream, in stream order: a frame where nothing moved repeats the stream's last
result with `gated = true`; a frame that runs because part of it changed (gate =
"motion_regions") is shown to the analyzer as that region only, a crop at the frame's
own pixels. The boxes it finds there are mapped back into the whole frame, and the
stream's last boxes that lie wholly outside the region stand for the rest of the scene,
which did not change (as the object detector does, detector.py); `region` says what the
analyzer saw ([x0, y0, x1, y1] in 0..1, null for the whole frame). With camera motion
on, a frame whose whole picture moved is searched in the gate's regions (what moved
against the picture, the uncovered edge), each a crop, and the last boxes outside them
move along with the picture (those it carried out of the frame are dropped); `regions`
lists what the analyzer saw and `region` is the box around them. A gated analyzer runs
item by item, also when it could take batches."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from daemon.geometry import area, around, contains, iou, overlaps
from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Analyzer, Modality, WorkItem
from daemon.workers.analyzers.gate import Box, CameraMove, MotionGate, disjoint, gate_for
from daemon.workers.analyzers.gate_options import GateOptions
from daemon.workers.analyzers.state import PerStream

Outputs = dict[str, JsonValue]
Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 in 0..1 of the whole frame
PARALLEL = ("boxes", "scores", "labels")  # outputs with one entry per listed box


class Gated:
    """`inner` behind the motion gate its options ask for (none: it runs on every frame,
    and its outputs still carry `gated`, and `region` where it can take regions)."""

    def __init__(self, inner: Analyzer, options: GateOptions) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.modality: Modality = inner.modality
        self.gate: MotionGate | None = gate_for(options)
        self.regions = type(options).regions
        self.camera = options.gate_camera_motion
        self.limit: int | None = getattr(options, "max_boxes", None)
        # The smallest crop the analyzer can look at (w, h), e.g. HOG's detection window.
        self.min_region: tuple[int, int] = getattr(inner, "min_region", (1, 1))
        self._last: PerStream[Outputs] = PerStream()

    def analyze(self, item: WorkItem) -> Outputs:
        last = self._last.get(item.stream)
        if self.gate is None:
            return self._marked(self.inner.analyze(item), [])
        decision = self.gate.decide(item, last is not None)
        if not decision.run and last is not None:  # nothing moved: the scene is as last seen
            return {**last, "gated": True}
        if decision.camera is not None:
            result = self._with_camera(item, decision.camera, last or {})
        elif decision.region is None:
            result = self._marked(self.inner.analyze(item), [])
        else:
            result = self._in_regions(item, [decision.region], last or {})
        self._last.put(item.stream, result)
        return result

    def _marked(self, outputs: Outputs, seen: list[Rect]) -> Outputs:
        """Outputs with `gated`, and what the analyzer saw (`seen` empty: all of it)."""
        out: Outputs = {**outputs, "gated": False}
        if self.regions:
            out["region"] = [round(v, 4) for v in around(seen)] if seen else None
        if self.camera:
            out["regions"] = [[round(v, 4) for v in r] for r in seen] if seen else None
        return out

    def _in_regions(self, item: WorkItem, regions: list[Box], last: Outputs) -> Outputs:
        frame = item.array
        height, width = frame.shape[:2]
        known = [_rect(box) for box in _listed(last.get("boxes"))]
        grown = [
            at_least(covering(region, known, width, height), self.min_region, width, height)
            for region in regions
        ]
        parts: list[tuple[Outputs, Rect]] = []
        for x0, y0, x1, y1 in disjoint(grown):
            crop = replace(item, data=np.ascontiguousarray(frame[y0:y1, x0:x1]))
            seen: Rect = (x0 / width, y0 / height, x1 / width, y1 / height)
            parts.append((self.inner.analyze(crop), seen))
        return self._marked(merged(parts, last, self.limit), [seen for _, seen in parts])

    def _with_camera(self, item: WorkItem, move: CameraMove, last: Outputs) -> Outputs:
        height, width = item.array.shape[:2]
        carried = carried_along(last, move.shift[0] / width, move.shift[1] / height)
        return self._in_regions(item, list(move.regions), carried)


class GatedWarm(Gated):
    """A gated analyzer that has a warm-up of its own."""

    def warmup(self, batch_size: int) -> None:
        self.inner.warmup(batch_size)  # type: ignore[attr-defined]


def at_least(region: Box, size: tuple[int, int], width: int, height: int) -> Box:
    """`region` grown about its centre to at least `size` (w, h) pixels, kept inside the
    frame (the whole frame's side where the frame is smaller)."""
    x0, y0, x1, y1 = region
    x0, x1 = _span(x0, x1, size[0], width)
    y0, y1 = _span(y0, y1, size[1], height)
    return x0, y0, x1, y1


def covering(region: Box, boxes: list[Rect], width: int, height: int) -> Box:
    """`region` grown to take in whole, with a tenth of their size around them, the boxes
    (0..1) that lie partly inside it: an object the region cuts is searched whole, not
    lost because it is neither outside nor wholly seen."""
    x0, y0, x1, y1 = region
    grown = True
    while grown:
        grown = False
        for bx0, by0, bx1, by1 in boxes:
            pad_x, pad_y = (bx1 - bx0) * width / 10, (by1 - by0) * height / 10
            px0, py0 = (
                max(0, math.floor(bx0 * width - pad_x)),
                max(0, math.floor(by0 * height - pad_y)),
            )
            px1 = min(width, math.ceil(bx1 * width + pad_x))
            py1 = min(height, math.ceil(by1 * height + pad_y))
            whole = (px0, py0, px1, py1)
            if overlaps(whole, (x0, y0, x1, y1)) and not contains((x0, y0, x1, y1), whole):
                x0, y0, x1, y1 = min(x0, px0), min(y0, py0), max(x1, px1), max(y1, py1)
                grown = True
    return x0, y0, x1, y1


def _listed(boxes: JsonValue) -> list[list[Any]]:
    return (
        [b for b in boxes if isinstance(b, list) and len(b) == 4] if isinstance(boxes, list) else []
    )


def _span(start: int, end: int, least: int, limit: int) -> tuple[int, int]:
    side = min(limit, max(end - start, least))
    start = min(max(0, (start + end - side) // 2), limit - side)
    return start, start + side


def merged(parts: list[tuple[Outputs, Rect]], last: Outputs, limit: int | None) -> Outputs:
    """What the analyzer found in each region it saw (boxes in 0..1 of that region), with
    the last result's boxes that lie wholly outside all of them; surest first where the
    outputs have `scores`, else largest first; `count` counts both. A box found twice
    where regions overlap (grown to the analyzer's smallest crop) is kept once."""
    found = parts[0][0]
    keys = [k for k in PARALLEL if isinstance(found.get(k), list)]
    at = keys.index("boxes")
    order = _order(keys, at)
    inside = [_mapped(row, at, seen) for outputs, seen in parts for row in _rows(outputs, keys)]
    once = _once(sorted(inside, key=order), at) if len(parts) > 1 else inside
    seen_all = [seen for _, seen in parts]
    outside = [
        row
        for row in _rows(last, keys)
        if not any(overlaps(_rect(row[at]), seen) for seen in seen_all)
    ]
    rows = sorted(once + outside, key=order)
    listed = rows if limit is None else rows[:limit]
    # Counted beyond what is listed (max_boxes), less the boxes found twice.
    counts = [c if isinstance(c := outputs.get("count"), int) else 0 for outputs, _ in parts]
    count = sum(counts) - (len(inside) - len(once))
    out: Outputs = {**found, **{k: [r[i] for r in listed] for i, k in enumerate(keys)}}
    out["count"] = max(count, len(once)) + len(outside)
    return out


def _order(keys: list[str], at: int) -> Callable[[tuple[Any, ...]], float]:
    """Sort key of rows: surest first where there are scores, else largest first."""
    if "scores" in keys:
        s = keys.index("scores")
        return lambda r: -float(r[s])
    return lambda r: -area(_rect(r[at]))


def _once(rows: list[tuple[Any, ...]], at: int) -> list[tuple[Any, ...]]:
    """Rows in order, less any whose box mostly covers (IoU over 0.5) an earlier one's."""
    kept: list[tuple[Any, ...]] = []
    for row in rows:
        box = _rect(row[at])
        if all(iou(box, _rect(other[at])) <= 0.5 for other in kept):
            kept.append(row)
    return kept


def carried_along(last: Outputs, dx: float, dy: float) -> Outputs:
    """`last` with its boxes moved by (dx, dy) (0..1 of the frame) and clipped to it; a
    box whose centre left the frame is dropped with its entries."""
    keys = [k for k in PARALLEL if isinstance(last.get(k), list)]
    if "boxes" not in keys:
        return last
    at = keys.index("boxes")
    rows = []
    for row in _rows(last, keys):
        x0, y0, x1, y1 = _rect(row[at])
        x0, y0, x1, y1 = x0 + dx, y0 + dy, x1 + dx, y1 + dy
        if 0 <= (x0 + x1) / 2 <= 1 and 0 <= (y0 + y1) / 2 <= 1:
            box = [round(min(1.0, max(0.0, v)), 4) for v in (x0, y0, x1, y1)]
            rows.append((*row[:at], box, *row[at + 1 :]))
    return {**last, **{k: [r[i] for r in rows] for i, k in enumerate(keys)}}


def _rows(outputs: Outputs, keys: list[str]) -> list[tuple[Any, ...]]:
    """One tuple per listed box: its entries of the parallel lists `keys`."""
    lists = [value if isinstance(value := outputs.get(k), list) else [] for k in keys]
    return list(zip(*lists, strict=True))


def _mapped(row: tuple[Any, ...], at: int, seen: Rect) -> tuple[Any, ...]:
    """A row whose box (in 0..1 of the region) is put in 0..1 of the whole frame."""
    bx0, by0, bx1, by1 = _rect(row[at])
    w, h = seen[2] - seen[0], seen[3] - seen[1]
    box = [seen[0] + bx0 * w, seen[1] + by0 * h, seen[0] + bx1 * w, seen[1] + by1 * h]
    return (*row[:at], [round(v, 4) for v in box], *row[at + 1 :])


def _rect(box: Any) -> Rect:
    x0, y0, x1, y1 = (float(v) for v in box)
    return x0, y0, x1, y1


def gated(analyzer: Analyzer, options: GateOptions) -> Analyzer:
    """The analyzer behind its gate; one that gates itself (`gates_itself`) as it is."""
    if getattr(analyzer, "gates_itself", False):
        return analyzer
    wrapper = GatedWarm if callable(getattr(analyzer, "warmup", None)) else Gated
    return wrapper(analyzer, options)  # type: ignore[return-value]
