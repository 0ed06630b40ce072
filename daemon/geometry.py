"""Axis-aligned boxes (x0, y0, x1, y1; end exclusive), in pixels or in 0..1 of a frame
alike: for the motion gate and the box analyzers (workers) and the tracker (tandemd).
Pure Python and no imports of the project, so that either process can take it without
loading the other's modules."""

from __future__ import annotations

from collections.abc import Sequence

Coords = Sequence[float]


def area(box: Coords) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def overlaps(a: Coords, b: Coords) -> bool:
    """Whether the boxes share any area (touching edges do not)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def contains(outer: Coords, inner: Coords) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and inner[2] <= outer[2]
        and inner[3] <= outer[3]
    )


def iou(a: Coords, b: Coords) -> float:
    """Intersection over union, 0 for boxes apart."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    both = w * h
    return both / (area(a) + area(b) - both)


def around(boxes: Sequence[Coords]) -> tuple[float, float, float, float]:
    """The box around the boxes."""
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
