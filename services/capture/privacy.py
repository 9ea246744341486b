"""Per camera regions blacked out in every captured image (a neighbour's window, a street).

A box mostly inside blacked-out pixels is dropped from the labels too: a box around nothing
visible would teach the model to see things in black rectangles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from services.capture.captured import Box

Rectangle = tuple[float, float, float, float]  # x1, y1, x2, y2 in fractions of the frame
HIDDEN_SHARE = 0.5  # a box with at least this share of its area blacked out is dropped


def black_out(image: np.ndarray, regions: Sequence[Rectangle]) -> np.ndarray | None:
    """Black the regions out of `image` (in place); the mask of blacked pixels, or None when
    there are none. Edges round outwards: a region never leaves a sliver of what it hides."""
    if not regions:
        return None
    height, width = image.shape[:2]
    hidden = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in regions:
        hidden[math.floor(y1 * height) : math.ceil(y2 * height),
               math.floor(x1 * width) : math.ceil(x2 * width)] = True  # fmt: skip
    image[hidden] = 0
    return hidden


def visible(boxes: Iterable[Box], hidden: np.ndarray | None) -> tuple[Box, ...]:
    """The boxes that are not mostly blacked out."""
    if hidden is None:
        return tuple(boxes)
    height, width = hidden.shape
    kept = []
    for box in boxes:
        x1, x2 = (min(max(round(v), 0), width) for v in (box.x1, box.x2))
        y1, y2 = (min(max(round(v), 0), height) for v in (box.y1, box.y2))
        area = (x2 - x1) * (y2 - y1)
        if area <= 0 or hidden[y1:y2, x1:x2].sum() < HIDDEN_SHARE * area:
            kept.append(box)
    return tuple(kept)
