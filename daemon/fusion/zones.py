"""Zones and lines of a stream: named polygons and segments in 0..1 frame coordinates
(x right, y down), applied to the tracks of the analyzers they name.

A track's position is one point of its box, its `anchor`: the bottom centre by default
(where a person or a car touches the ground), or the centre. A zone holds the tracks
whose anchor is inside its polygon; a line is crossed when a track's anchor passes from
one side of the segment to the other between two sightings, through the segment.
Direction: walking along the line from `a` to `b` in the picture, `in` is a crossing
from the left-hand side to the right-hand side, `out` the other way (for a line drawn
left to right across the frame, `in` is downwards).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Point = tuple[float, float]
Anchor = Literal["bottom_center", "center"]
Name = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _in_frame(points: list[Point] | tuple[Point, ...], key: str) -> None:
    for i, (x, y) in enumerate(points):
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise ValueError(f"{key}[{i}]: [{x}, {y}] is outside the frame (0..1)")


class Shape(_Strict):
    name: str = Name
    # Tracked analyzers whose tracks it counts; empty: all of the stream's `track`.
    analyzers: list[str] = Field(default_factory=list)
    anchor: Anchor = "bottom_center"


class ZoneConfig(Shape):
    polygon: list[Point] = Field(min_length=3, max_length=64)

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _in_frame(self.polygon, "polygon")
        if abs(_area(self.polygon)) < 1e-6:
            raise ValueError("polygon: has no area")
        return self


class LineConfig(Shape):
    a: Point
    b: Point

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _in_frame((self.a, self.b), "a, b")
        if self.a == self.b:
            raise ValueError("b: the same point as a; a line needs two")
        return self


def anchor_point(box: tuple[float, float, float, float], anchor: Anchor) -> Point:
    x = (box[0] + box[2]) / 2
    return (x, box[3]) if anchor == "bottom_center" else (x, (box[1] + box[3]) / 2)


def inside(point: Point, polygon: list[Point]) -> bool:
    """Ray casting: whether `point` is inside `polygon` (on an edge counts as either)."""
    if not polygon:
        return False
    x, y = point
    result = False
    x0, y0 = polygon[-1]
    for x1, y1 in polygon:  # each edge from the vertex before to this one
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            result = not result
        x0, y0 = x1, y1
    return result


def crossing(
    line: LineConfig, before: Point, after: Point
) -> tuple[Literal["in", "out"], float] | None:
    """The direction in which the move from `before` to `after` crossed `line`, if it did,
    and where along the move (0..1)."""
    side_before = _side(line.a, line.b, before)
    side_after = _side(line.a, line.b, after)
    if side_before == 0 or side_after == 0 or (side_before > 0) == (side_after > 0):
        return None  # touching the line is no crossing until it is left on the other side
    # The move's segment must cross the line's segment, not the line beyond its ends.
    if (_side(before, after, line.a) > 0) == (_side(before, after, line.b) > 0):
        return None
    # In image coordinates (y down), the right-hand side of a->b has a positive cross product.
    return ("in" if side_after > 0 else "out"), side_before / (side_before - side_after)


def boundary(polygon: list[Point], before: Point, after: Point, steps: int = 12) -> float:
    """Where along the move from `before` to `after` (0..1) it passed the polygon's edge
    (`before` and `after` on different sides of it), by bisection."""
    low, high = 0.0, 1.0
    start_inside = inside(before, polygon)
    for _ in range(steps):
        middle = (low + high) / 2
        point = (
            before[0] + (after[0] - before[0]) * middle,
            before[1] + (after[1] - before[1]) * middle,
        )
        if inside(point, polygon) == start_inside:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _side(a: Point, b: Point, p: Point) -> float:
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def _area(polygon: list[Point]) -> float:
    n = len(polygon)
    return (
        sum(
            polygon[i][0] * polygon[(i + 1) % n][1] - polygon[(i + 1) % n][0] * polygon[i][1]
            for i in range(n)
        )
        / 2
    )
