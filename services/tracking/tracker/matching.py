"""IoU costs and gated linear assignment."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Index = npt.NDArray[np.intp]
_TINY = np.finfo(np.float64).tiny


def iou_matrix(a: Array, b: Array) -> Array:
    """Pairwise IoU of (n, 4) and (m, 4) xyxy boxes; degenerate boxes give 0, never NaN."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    # Few, larger numpy calls: at ~10 boxes the per-call overhead is the whole cost.
    wh = np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2])
    np.maximum(wh, 0.0, out=wh)
    inter = wh[..., 0] * wh[..., 1]
    size_a = np.maximum(a[:, 2:] - a[:, :2], 0.0)
    size_b = np.maximum(b[:, 2:] - b[:, :2], 0.0)
    union = (size_a[:, 0] * size_a[:, 1])[:, None] + (size_b[:, 0] * size_b[:, 1])[None, :]
    union -= inter
    return inter / np.maximum(union, _TINY)


def linear_assignment(
    cost: Array, thresh: float, forbidden: npt.NDArray[np.bool_] | None = None
) -> tuple[Index, Index, Index, Index]:
    """Minimum-cost one-to-one matching keeping only pairs with cost <= thresh.

    Returns (matched rows, matched cols, unmatched rows, unmatched cols); matched pairs are
    in ascending row order, unmatched indices ascending.
    """
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, np.arange(rows), np.arange(cols)
    invalid = cost > thresh
    if forbidden is not None:
        invalid |= forbidden
    # Invalid pairs get one cost above every valid one rather than inf, which scipy rejects as
    # infeasible when a row has no valid column. Invalid pairs it picks anyway are dropped.
    gated = np.where(invalid, thresh + 1.0, cost)
    row_ind, col_ind = linear_sum_assignment(gated)
    keep = ~invalid[row_ind, col_ind]
    r, c = row_ind[keep], col_ind[keep]
    free_rows = np.ones(rows, dtype=bool)
    free_rows[r] = False
    free_cols = np.ones(cols, dtype=bool)
    free_cols[c] = False
    return r, c, free_rows.nonzero()[0], free_cols.nonzero()[0]
