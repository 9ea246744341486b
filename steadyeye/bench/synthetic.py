"""MOT-layout sequences with simulated detections: wholly synthetic ones (`synthesize_mot`) and
ones built on a real ground truth that ships no detections (`mot_from_ground_truth`).

The simulated detector (`DetectorModel`) jitters boxes, misses objects, scores them lower the
more they are occluded, and adds false positives and flickering ghosts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from steadyeye.bench.mot import (
    PEDESTRIAN,
    Array,
    normalise_gt,
    read_table,
    tlwh_to_xyxy,
    write_seqinfo,
    write_table,
)


@dataclass(frozen=True, slots=True)
class DetectorModel:
    """How the simulated detector errs."""

    drop: float = 0.05  # chance a visible object is missed anyway
    min_visibility: float = 0.25  # below this an object is (almost always) missed
    position_noise: float = 0.03  # std of box edges, as a fraction of the box height
    false_positives: float = 0.5  # mean false detections per frame
    # Static false detections, confident, present every other frame for a stretch of the
    # sequence: what min_hits is there to reject.
    flicker_ghosts: int = 2
    seed: int = 0


def _visibility(boxes: Array) -> Array:
    """Visible fraction of each xyxy box, with the box whose bottom is lower in the image in
    front (a camera looking down at a ground plane). Overlaps of occluders are not
    subtracted twice, hence the clip."""
    if len(boxes) == 0:
        return np.zeros(0)
    ix1 = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    iy1 = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    ix2 = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
    iy2 = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    in_front = boxes[None, :, 3] > boxes[:, None, 3]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    hidden = (inter * in_front).sum(axis=1)
    return np.clip(1.0 - hidden / np.maximum(area, np.finfo(float).tiny), 0.0, 1.0)


def _gt_visibility(gt: Array) -> Array:
    """Visible fraction of each gt row (frame, id, x, y, w, h, ...) among its frame's boxes."""
    vis = np.ones(len(gt))
    for frame in np.unique(gt[:, 0]):
        idx = np.flatnonzero(gt[:, 0] == frame)
        vis[idx] = _visibility(tlwh_to_xyxy(gt[idx, 2:6]))
    return vis


def _clipped_tlwh(edges: Array, width: int, height: int) -> list[float]:
    """x, y, w, h of an xyxy box clipped to the image, at least a pixel each way."""
    x1, y1, x2, y2 = np.clip(edges, [0, 0, 0, 0], [width, height, width, height])
    return [float(x1), float(y1), float(max(x2 - x1, 1.0)), float(max(y2 - y1, 1.0))]


def _detections(
    gt: Array, vis: Array, length: int, width: int, height: int, model: DetectorModel
) -> Array:
    """det.txt rows (frame,-1,x,y,w,h,conf,-1,-1,-1) from gt rows (frame,id,x,y,w,h,...).

    Scores fall with occlusion, so partly hidden objects land below the high threshold:
    the case ByteTrack's second stage exists for."""
    rng = np.random.default_rng(model.seed)
    out: list[list[float]] = []
    for row, v in zip(gt, vis, strict=True):
        if v < model.min_visibility and rng.random() < 0.9:
            continue
        if rng.random() < model.drop:
            continue
        x, y, w, h = row[2:6]
        edges = np.array([x, y, x + w, y + h]) + rng.normal(0, model.position_noise * h, 4)
        score = float(np.clip(rng.normal(0.85, 0.07) * (0.35 + 0.65 * v), 0.05, 0.99))
        out.append([row[0], *_clipped_tlwh(edges, width, height), score])
    # Ghosts start after frame 1: a tracker that confirms everything on its first frame (as
    # supervision's does) would otherwise turn each into a long false track, and the
    # comparison would measure that one rule instead of the tracking.
    ghosts = []
    for _ in range(model.flicker_ghosts):
        first = int(rng.integers(2, max(3, length // 2)))
        last = int(min(length, first + rng.integers(length // 4 + 1, length // 2 + 2)))
        ghosts.append((rng.uniform(0, width * 0.8), rng.uniform(0, height * 0.6), first, last))
    for frame in range(1, length + 1):
        for _ in range(rng.poisson(model.false_positives)):
            h = rng.uniform(0.1, 0.3) * height
            x, y = rng.uniform(0, width - 0.4 * h), rng.uniform(0, height - h)
            out.append([frame, x, y, 0.4 * h, h, rng.uniform(0.1, 0.7)])
        for gx, gy, first, last in ghosts:
            if first <= frame <= last and (frame - first) % 2 == 0:
                h = 0.2 * height
                out.append([frame, gx, gy, 0.4 * h, h, rng.uniform(0.6, 0.8)])
    det = np.array(out).reshape(-1, 6)
    det = det[np.lexsort((det[:, 1], det[:, 0]))]
    full = np.full((len(det), 10), -1.0)
    full[:, 0] = det[:, 0]
    full[:, 2:7] = det[:, 1:6]
    return full


def synthesize_mot(
    directory: Path,
    *,
    frames: int = 300,
    objects: int = 12,
    seed: int = 0,
    width: int = 1280,
    height: int = 720,
    frame_rate: float = 30.0,
    detector: DetectorModel | None = None,
) -> Path:
    """Write a MOT-layout sequence: pedestrians on straight lines, in pairs that walk toward
    each other along nearly the same line and cross (so one hides the other), plus a noisy
    detector (jitter, misses, occlusion-dependent scores, false positives, flickering ghosts).
    Deterministic for a seed. Returns the directory."""
    directory = Path(directory)
    rng = np.random.default_rng(seed)
    rows: list[list[float]] = []
    for pair in range((objects + 1) // 2):
        # Meet somewhere inside the frame and inside the sequence.
        meet_t = rng.uniform(0.2, 0.8) * frames
        meet_x = rng.uniform(0.25, 0.75) * width
        lane = rng.uniform(0.5, 0.95) * height
        for k in range(2):
            oid = 2 * pair + k + 1
            if oid > objects:
                break
            foot = lane + (k * 2 - 1) * rng.uniform(0.0, 0.03) * height
            h = 0.35 * foot  # perspective: lower in the image is nearer, so taller
            w = h * rng.uniform(0.35, 0.45)
            vx = (1 if k == 0 else -1) * rng.uniform(1.5, 5.0)
            vy = rng.normal(0.0, 0.2)
            birth = max(1, int(meet_t - rng.uniform(30, 150)))
            death = min(frames, int(meet_t + rng.uniform(30, 150)))
            for t in range(birth, death + 1):
                cx = meet_x + vx * (t - meet_t)
                bottom = foot + vy * (t - meet_t)
                x1, y1 = cx - w / 2, bottom - h
                inside_w = min(x1 + w, width) - max(x1, 0)
                inside_h = min(bottom, height) - max(y1, 0)
                if inside_w <= 0.5 * w or inside_h <= 0.5 * h:
                    continue  # mostly out of view: not annotated
                rows.append([t, oid, x1, y1, w, h, 1, PEDESTRIAN])
    gt = np.array(rows).reshape(-1, 8)
    gt = gt[np.lexsort((gt[:, 1], gt[:, 0]))]
    vis = _gt_visibility(gt)
    model = detector if detector is not None else DetectorModel(seed=seed + 1)
    det = _detections(gt, vis, frames, width, height, model)
    write_seqinfo(directory, frame_rate, frames, width, height)
    write_table(directory / "gt" / "gt.txt", np.column_stack([gt, vis]))
    write_table(directory / "det" / "det.txt", det)
    return directory


def mot_from_ground_truth(
    gt_file: Path,
    directory: Path,
    *,
    seed: int = 0,
    frame_rate: float = 25.0,
    width: int = 640,
    height: int = 480,
    detector: DetectorModel | None = None,
) -> Path:
    """A MOT-layout sequence from a ground truth alone (e.g. motmetrics' TUD-Campus, which
    ships no detections): gt copied, det.txt simulated from it as `synthesize_mot` does."""
    directory = Path(directory)
    gt_file = Path(gt_file)
    gt = normalise_gt(read_table(gt_file))
    length = int(gt[:, 0].max()) if len(gt) else 0
    model = detector if detector is not None else DetectorModel(seed=seed)
    det = _detections(gt, _gt_visibility(gt), length, width, height, model)
    write_seqinfo(directory, frame_rate, length, width, height)
    (directory / "gt").mkdir(parents=True, exist_ok=True)
    (directory / "gt" / "gt.txt").write_text(gt_file.read_text())
    write_table(directory / "det" / "det.txt", det)
    return directory
