"""The MOT Challenge sequence layout: seqinfo.ini, det/det.txt, gt/gt.txt, and results files.

Ground truth is normalised to MOT17's columns (frame, id, x, y, w, h, consider, class), so
files with fewer columns (MOT15, hand-made ones) read as pedestrians to consider.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
# Columns of a tracker output table: frame, id, x, y, w, h, conf.
TrackRows = Array

PEDESTRIAN = 1
# MOT17 classes whose matched predictions are neither rewarded nor punished:
# person on vehicle, static person, distractor, reflection.
DISTRACTOR_CLASSES = (2, 7, 8, 12)
MAX_MOT_CLASS = 12


@dataclass(frozen=True, slots=True)
class MotSequence:
    name: str
    frame_rate: float
    length: int
    width: int
    height: int
    dets: Array  # frame, x, y, w, h, conf
    gt: Array  # frame, id, x, y, w, h, consider, class


def tlwh_to_xyxy(tlwh: Array) -> Array:
    return np.concatenate([tlwh[:, :2], tlwh[:, :2] + tlwh[:, 2:4]], axis=1)


def read_table(path: Path) -> Array:
    """Rows of a MOT text file; short rows are padded with NaN so files with fewer columns
    (MOT15, hand-made ones) still load."""
    rows = []
    for line in path.read_text().splitlines():
        fields = [f for f in line.replace(" ", "").split(",") if f != ""]
        if fields:
            rows.append([float(f) for f in fields])
    if not rows:
        return np.zeros((0, 10))
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def normalise_gt(raw: Array) -> Array:
    """frame, id, x, y, w, h, consider, class. Class and consider flags are trusted only when
    they look like MOT16+ (integer classes 1..12); MOT15 files carry world coordinates in those
    columns, so every row of those counts as a pedestrian to consider."""
    n = len(raw)
    gt = np.zeros((n, 8))
    gt[:, :6] = raw[:, :6]
    gt[:, 6] = 1.0
    gt[:, 7] = PEDESTRIAN
    if n == 0:
        return gt
    if raw.shape[1] > 6:
        consider = raw[:, 6]
        gt[:, 6] = np.where(np.isnan(consider), 1.0, consider)
    if raw.shape[1] > 7:
        cls = raw[:, 7]
        if (
            np.all(np.isfinite(cls))
            and np.all(cls == np.round(cls))
            and np.all((cls >= 1) & (cls <= MAX_MOT_CLASS))
        ):
            gt[:, 7] = cls
    return gt


def read_mot_sequence(mot_dir: Path) -> MotSequence:
    mot_dir = Path(mot_dir)
    info = configparser.ConfigParser()
    info.read(mot_dir / "seqinfo.ini")
    section = info["Sequence"] if info.has_section("Sequence") else {}
    dets_raw = read_table(mot_dir / "det" / "det.txt")
    gt_path = mot_dir / "gt" / "gt.txt"
    gt = normalise_gt(read_table(gt_path)) if gt_path.exists() else np.zeros((0, 8))
    dets = np.zeros((len(dets_raw), 6))
    if len(dets_raw):
        dets[:, 0] = dets_raw[:, 0]
        dets[:, 1:5] = dets_raw[:, 2:6]
        dets[:, 5] = dets_raw[:, 6] if dets_raw.shape[1] > 6 else 1.0
    last_frame = int(max([0, *dets[:, 0], *gt[:, 0]]))
    return MotSequence(
        name=section.get("name", mot_dir.name),
        frame_rate=float(section.get("frameRate", 30)),
        length=int(section.get("seqLength", last_frame)),
        width=int(section.get("imWidth", 0)),
        height=int(section.get("imHeight", 0)),
        dets=dets,
        gt=gt,
    )


def write_mot_results(rows: TrackRows, path: Path) -> None:
    """MOT Challenge results: frame,id,x,y,w,h,conf,-1,-1,-1 sorted by frame then id."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    order = np.lexsort((rows[:, 1], rows[:, 0])) if len(rows) else []
    lines = [
        f"{int(r[0])},{int(r[1])},{r[2]:.2f},{r[3]:.2f},{r[4]:.2f},{r[5]:.2f},{r[6]:.4f},-1,-1,-1"
        for r in rows[order]
    ]
    path.write_text("".join(line + "\n" for line in lines))


def write_seqinfo(directory: Path, fps: float, length: int, w: int, h: int) -> None:
    """seqinfo.ini naming the sequence after its directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "seqinfo.ini").write_text(
        "[Sequence]\n"
        f"name={directory.name}\nimDir=img1\nframeRate={fps:g}\nseqLength={length}\n"
        f"imWidth={w}\nimHeight={h}\nimExt=.jpg\n"
    )


def write_table(path: Path, rows: Array) -> None:
    """A gt.txt / det.txt: frame and id as integers, the rest with at most two decimals (whole
    numbers without any)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for r in rows:
        head = [str(int(v)) for v in r[:2]]
        tail = [f"{v:.2f}" if v != round(v) else str(round(v)) for v in r[2:]]
        lines.append(",".join(head + tail))
    path.write_text("".join(line + "\n" for line in lines))
