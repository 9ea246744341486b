"""IoU costs and gated linear assignment."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def iou_matrix(a: Array, b: Array) -> Array:
    """Pairwise IoU of (n, 4) and (m, 4) xyxy boxes; degenerate boxes give 0, never NaN."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def association_cost(
    track_boxes: Array,
    track_classes: IntArray,
    det_boxes: Array,
    det_scores: Array,
    det_classes: IntArray,
    *,
    fuse_score: bool,
    class_aware: bool,
) -> tuple[Array, npt.NDArray[np.bool_]]:
    """Cost matrix (tracks x detections) and the mask of pairs that may never match."""
    iou = iou_matrix(track_boxes, det_boxes)
    cost = 1.0 - (iou * det_scores[None, :] if fuse_score else iou)
    forbidden = (
        track_classes[:, None] != det_classes[None, :]
        if class_aware
        else np.zeros(cost.shape, dtype=bool)
    )
    return cost, forbidden


def linear_assignment(
    cost: Array, thresh: float, forbidden: npt.NDArray[np.bool_] | None = None
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Minimum-cost one-to-one matching keeping only pairs with cost <= thresh.

    Returns (matches as (row, col), unmatched rows, unmatched cols), all in ascending order.
    """
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return [], list(range(rows)), list(range(cols))
    gated = cost.copy()
    invalid = gated > thresh
    if forbidden is not None:
        invalid |= forbidden
    # Invalid pairs get one cost above every valid one rather than inf, which scipy rejects as
    # infeasible when a row has no valid column. Invalid pairs it picks anyway are dropped.
    gated[invalid] = thresh + 1.0
    row_ind, col_ind = linear_sum_assignment(gated)
    keep = ~invalid[row_ind, col_ind]
    matches = [(int(r), int(c)) for r, c in zip(row_ind[keep], col_ind[keep], strict=True)]
    matched_rows = {r for r, _ in matches}
    matched_cols = {c for _, c in matches}
    return (
        matches,
        [r for r in range(rows) if r not in matched_rows],
        [c for c in range(cols) if c not in matched_cols],
    )
