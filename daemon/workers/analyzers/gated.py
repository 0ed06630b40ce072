"""The motion gate around an analyzer that does not gate itself: faces, persons, and
plugins whose options derive from `GateOptions` (the model-backed analyzers gate their
batches themselves, model_base.py).

Per stream, in stream order: a frame where nothing moved repeats the stream's last
result with `gated = true`; a frame that runs because part of it changed (gate =
"motion_regions") is shown to the analyzer as that region only, a crop at the frame's
own pixels. The boxes it finds there are mapped back into the whole frame, and the
stream's last boxes that lie wholly outside the region stand for the rest of the scene,
which did not change (as the object detector does, detector.py); `region` says what the
analyzer saw ([x0, y0, x1, y1] in 0..1, null for the whole frame). A gated analyzer runs
item by item, also when it could take batches."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Analyzer, Modality, WorkItem
from daemon.workers.analyzers.gate import Box, MotionGate, gate_for
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
        self.limit: int | None = getattr(options, "max_boxes", None)
        # The smallest crop the analyzer can look at (w, h), e.g. HOG's detection window.
        self.min_region: tuple[int, int] = getattr(inner, "min_region", (1, 1))
        self._last: PerStream[Outputs] = PerStream()

    def analyze(self, item: WorkItem) -> Outputs:
        last = self._last.get(item.stream)
        if self.gate is None:
            return self._marked(self.inner.analyze(item), None)
        decision = self.gate.decide(item, last is not None)
        if not decision.run and last is not None:  # nothing moved: the scene is as last seen
            return {**last, "gated": True}
        if decision.region is None:
            result = self._marked(self.inner.analyze(item), None)
        else:
            result = self._in_region(item, decision.region, last or {})
        self._last.put(item.stream, result)
        return result

    def _marked(self, outputs: Outputs, region: Rect | None) -> Outputs:
        out: Outputs = {**outputs, "gated": False}
        if self.regions:
            out["region"] = None if region is None else [round(v, 4) for v in region]
        return out

    def _in_region(self, item: WorkItem, region: Box, last: Outputs) -> Outputs:
        frame = item.array
        height, width = frame.shape[:2]
        x0, y0, x1, y1 = at_least(region, self.min_region, width, height)
        crop = replace(item, data=np.ascontiguousarray(frame[y0:y1, x0:x1]))
        seen: Rect = (x0 / width, y0 / height, x1 / width, y1 / height)
        return self._marked(merged(self.inner.analyze(crop), last, seen, self.limit), seen)


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


def _span(start: int, end: int, least: int, limit: int) -> tuple[int, int]:
    side = min(limit, max(end - start, least))
    start = min(max(0, (start + end - side) // 2), limit - side)
    return start, start + side


def merged(found: Outputs, last: Outputs, seen: Rect, limit: int | None) -> Outputs:
    """What the analyzer found in the region `seen` (boxes in 0..1 of the region), with the
    last result's boxes that lie wholly outside it; surest first where the outputs have
    `scores`, else largest first; `count` counts both."""
    keys = [k for k in PARALLEL if isinstance(found.get(k), list)]
    at = keys.index("boxes")
    inside = [_mapped(row, at, seen) for row in _rows(found, keys)]
    outside = [row for row in _rows(last, keys) if not _overlap(_rect(row[at]), seen)]
    if "scores" in keys:
        s = keys.index("scores")
        rows = sorted(inside + outside, key=lambda r: -float(r[s]))
    else:
        rows = sorted(inside + outside, key=lambda r: -_area(_rect(r[at])))
    listed = rows if limit is None else rows[:limit]
    count = found.get("count", len(inside))
    out: Outputs = {**found, **{k: [r[i] for r in listed] for i, k in enumerate(keys)}}
    out["count"] = (count if isinstance(count, int) else len(inside)) + len(outside)
    return out


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


def _area(r: Rect) -> float:
    return (r[2] - r[0]) * (r[3] - r[1])


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def gated(analyzer: Analyzer, options: GateOptions) -> Analyzer:
    """The analyzer behind its gate; one that gates itself (`gates_itself`) as it is."""
    if getattr(analyzer, "gates_itself", False):
        return analyzer
    wrapper = GatedWarm if callable(getattr(analyzer, "warmup", None)) else Gated
    return wrapper(analyzer, options)  # type: ignore[return-value]
