"""Scores of a tracker output against a sequence's ground truth: HOTA with TrackEval's HOTA
class, MOTA / IDF1 / ID switches with motmetrics, both on the ground truth filtered as TrackEval
does for MOT17 (pedestrians with the consider flag; predictions matched to distractor classes
removed)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from services.tracking.tracker.matching import iou_matrix
from steadyeye.bench.mot import (
    DISTRACTOR_CLASSES,
    PEDESTRIAN,
    Array,
    MotSequence,
    TrackRows,
    tlwh_to_xyxy,
)

MATCH_IOU = 0.5  # CLEAR / Identity metrics' match threshold, as in MOTChallenge


@dataclass(frozen=True, slots=True)
class _FrameData:
    gt_ids: npt.NDArray[np.int64]
    gt_tlwh: Array
    tr_ids: npt.NDArray[np.int64]
    tr_tlwh: Array


def _filter_as_mot17(seq: MotSequence, tracks: TrackRows) -> list[_FrameData]:
    """TrackEval's MOT17 rules: drop predictions that match (IoU >= 0.5, one-to-one) a
    distractor-class box, then keep only pedestrian gt with the consider flag set."""
    eps = np.finfo(float).eps
    out = []
    for f in range(1, seq.length + 1):
        g = seq.gt[seq.gt[:, 0] == f]
        t = tracks[tracks[:, 0] == f]
        if len(g) and len(t):
            sim = iou_matrix(tlwh_to_xyxy(g[:, 2:6]), tlwh_to_xyxy(t[:, 2:6]))
            score = np.where(sim >= MATCH_IOU - eps, sim, 0.0)
            r, c = linear_sum_assignment(-score)
            hit = score[r, c] > eps
            distractor = np.isin(g[r[hit], 7], DISTRACTOR_CLASSES)
            t = np.delete(t, c[hit][distractor], axis=0)
        g = g[(g[:, 6] != 0) & (g[:, 7] == PEDESTRIAN)]
        out.append(
            _FrameData(g[:, 1].astype(np.int64), g[:, 2:6], t[:, 1].astype(np.int64), t[:, 2:6])
        )
    return out


def _hota(frames: list[_FrameData]) -> float:
    if not frames:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        # trackeval prints notes about optional dataset dependencies at import.
        from trackeval.metrics import HOTA

    gt_map = {g: i for i, g in enumerate(np.unique(np.concatenate([f.gt_ids for f in frames])))}
    tr_map = {t: i for i, t in enumerate(np.unique(np.concatenate([f.tr_ids for f in frames])))}
    data: dict[str, Any] = {
        "num_timesteps": len(frames),
        "num_gt_ids": len(gt_map),
        "num_tracker_ids": len(tr_map),
        "num_gt_dets": sum(len(f.gt_ids) for f in frames),
        "num_tracker_dets": sum(len(f.tr_ids) for f in frames),
        "gt_ids": [np.array([gt_map[g] for g in f.gt_ids], dtype=int) for f in frames],
        "tracker_ids": [np.array([tr_map[t] for t in f.tr_ids], dtype=int) for f in frames],
        "similarity_scores": [
            iou_matrix(tlwh_to_xyxy(f.gt_tlwh), tlwh_to_xyxy(f.tr_tlwh)) for f in frames
        ],
    }
    res = HOTA().eval_sequence(data)
    return float(np.mean(res["HOTA"]))


def _clear_identity(frames: list[_FrameData]) -> tuple[float, float, int]:
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=False)
    for i, f in enumerate(frames, start=1):
        dist = mm.distances.iou_matrix(f.gt_tlwh, f.tr_tlwh, max_iou=1 - MATCH_IOU)
        acc.update(f.gt_ids.tolist(), f.tr_ids.tolist(), dist, frameid=i)
    summary = mm.metrics.create().compute(acc, metrics=["mota", "idf1", "num_switches"])
    row = summary.iloc[0]
    return float(row["mota"]), float(row["idf1"]), int(row["num_switches"])


def evaluate(seq: MotSequence, tracks: TrackRows) -> dict[str, float | int]:
    """{hota, mota, idf1, id_switches} of `tracks` (frame, id, x, y, w, h, conf) on `seq`."""
    frames = _filter_as_mot17(seq, tracks)
    mota, idf1, switches = _clear_identity(frames)
    return {
        "hota": round(_hota(frames), 4),
        "mota": round(mota, 4),
        "idf1": round(idf1, 4),
        "id_switches": switches,
    }
