"""Plain-float geometry: point in polygon and sides of a segment.

Plain Python rather than shapely or supervision: a handful of points per track per frame is
cheaper without array set-up, needs no extra dependency, and gives the same bits everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[float, float]
Box = tuple[float, float, float, float]


def anchor(box: Box) -> Point:
    """Bottom-centre of an (x1, y1, x2, y2) box: where the feet (or wheels) touch the ground."""
    x1, _, x2, y2 = box
    return ((x1 + x2) / 2.0, y2)


def inside(point: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd ray casting; a point exactly on an edge may go either way, always the same way."""
    x, y = point
    result = False
    for (x1, y1), (x2, y2) in zip(polygon, [*polygon[1:], polygon[0]], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            result = not result
    return result


def _cross(a: Point, b: Point, p: Point) -> float:
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def side(start: Point, end: Point, point: Point, dead_band: float) -> int:
    """+1 right of start->end as seen on the image (y points down), -1 left, 0 within
    `dead_band` pixels of the (infinite) line."""
    length = ((end[0] - start[0]) ** 2 + (end[1] - start[1]) ** 2) ** 0.5
    distance = _cross(start, end, point) / length
    if abs(distance) <= dead_band:
        return 0
    return 1 if distance > 0 else -1


def crosses_segment(start: Point, end: Point, p: Point, q: Point) -> bool:
    """Whether the move p->q, whose ends lie on opposite sides of the line, passes through the
    segment start-end itself rather than beside one of its ends."""
    d1, d2 = _cross(p, q, start), _cross(p, q, end)
    return (d1 <= 0 <= d2) or (d2 <= 0 <= d1)
