"""Agreement of a candidate detector with the reference on the same frames.

Per frame, greedy matching by score: the candidate's boxes in descending score order, each
taking the unmatched reference box of highest IoU >= `iou` (of the same class when
class-aware). Both sides bring every box down to `present` (serve_score - margin); then

- recall    = sure reference boxes (>= serve_score + margin) that were matched / all of them,
- precision = sure candidate boxes that were matched / all of them,
- F1        = 2PR / (P + R).

So a disagreement counts only where one model is sure and the other has nothing there even at
a lower score: an object near the serving threshold on both sides is not evidence either way.
With margin 0 this is plain box-matched P/R/F1 at serve_score.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from steadyeye.v1.detections_pb2 import Detection


@dataclass(frozen=True)
class FrameDetections:
    """One model's boxes on one frame, in source pixels (x1, y1, x2, y2)."""

    boxes: np.ndarray  # [n, 4] float32
    scores: np.ndarray  # [n] float32
    classes: np.ndarray  # [n] int

    @classmethod
    def of(cls, detections: Iterable[Detection]) -> FrameDetections:
        found = list(detections)
        return cls(
            np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in found], np.float32)
            .reshape(-1, 4),
            np.array([d.score for d in found], np.float32),
            np.array([d.class_id for d in found], np.int64),
        )  # fmt: skip

    def subset(self, keep: np.ndarray) -> FrameDetections:
        """The boxes where `keep` (a boolean mask) is True."""
        return FrameDetections(self.boxes[keep], self.scores[keep], self.classes[keep])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def match(
    cand: FrameDetections, ref: FrameDetections, iou: float, class_aware: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy by candidate score: (candidate's matched reference index or -1, reference's
    matched flags)."""
    order = np.argsort(-cand.scores, kind="stable")
    overlaps = iou_matrix(cand.boxes, ref.boxes)
    if class_aware and overlaps.size:
        overlaps = np.where(cand.classes[:, None] == ref.classes[None, :], overlaps, 0.0)
    taken = np.zeros(len(ref.boxes), bool)
    matched = np.full(len(cand.boxes), -1)
    for i in order:
        if not len(ref.boxes):
            break
        row = np.where(taken, -1.0, overlaps[i])
        j = int(np.argmax(row))
        if row[j] >= iou:
            taken[j] = True
            matched[i] = j
    return matched, taken


@dataclass
class Tally:
    """Counts for precision (candidate side) and recall (reference side)."""

    cand_sure: int = 0
    cand_sure_matched: int = 0
    ref_sure: int = 0
    ref_sure_matched: int = 0

    def add(self, other: Tally) -> None:
        self.cand_sure += other.cand_sure
        self.cand_sure_matched += other.cand_sure_matched
        self.ref_sure += other.ref_sure
        self.ref_sure_matched += other.ref_sure_matched

    @property
    def precision(self) -> float | None:
        return self.cand_sure_matched / self.cand_sure if self.cand_sure else None

    @property
    def recall(self) -> float | None:
        return self.ref_sure_matched / self.ref_sure if self.ref_sure else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None and r is None:
            return None
        p, r = (1.0 if p is None else p), (1.0 if r is None else r)
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    def figures(self) -> dict[str, float | int | None]:
        return {
            "f1": _round(self.f1),
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "reference_boxes": self.ref_sure,
            "candidate_boxes": self.cand_sure,
            "reference_matched": self.ref_sure_matched,
            "candidate_matched": self.cand_sure_matched,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


@dataclass
class Agreement:
    """Agreement over all frames: overall (class-agnostic and class-aware), per class, per
    frame (for the report's worst frames) and detections per frame."""

    boxes: Tally = field(default_factory=Tally)
    classes: Tally = field(default_factory=Tally)
    per_class: dict[int, Tally] = field(default_factory=dict)
    frame_disagreement: list[int] = field(default_factory=list)
    served_reference: Counter = field(default_factory=Counter)  # per class, >= serve_score
    served_candidate: Counter = field(default_factory=Counter)
    frames: int = 0

    @property
    def served_per_frame(self) -> tuple[float, float]:
        n = max(self.frames, 1)
        return sum(self.served_reference.values()) / n, sum(self.served_candidate.values()) / n

    @property
    def detections_ratio(self) -> float | None:
        ref, cand = self.served_per_frame
        if ref == 0:
            return None if cand == 0 else float("inf")
        return cand / ref

    def add(self, other: Agreement) -> None:
        """Count `other`'s frames too (per-frame disagreements are not kept)."""
        self.boxes.add(other.boxes)
        self.classes.add(other.classes)
        for k, tally in other.per_class.items():
            self.per_class.setdefault(k, Tally()).add(tally)
        self.served_reference.update(other.served_reference)
        self.served_candidate.update(other.served_candidate)
        self.frames += other.frames

    def to_json(self) -> dict:
        """The counts (not the per-frame list), for a store that outlives the process."""
        return {
            "boxes": asdict(self.boxes),
            "classes": asdict(self.classes),
            "per_class": {str(k): asdict(t) for k, t in self.per_class.items()},
            "served_reference": {str(k): n for k, n in self.served_reference.items()},
            "served_candidate": {str(k): n for k, n in self.served_candidate.items()},
            "frames": self.frames,
        }

    @classmethod
    def from_json(cls, raw: dict) -> Agreement:
        return cls(
            boxes=Tally(**raw["boxes"]),
            classes=Tally(**raw["classes"]),
            per_class={int(k): Tally(**t) for k, t in raw["per_class"].items()},
            served_reference=Counter({int(k): n for k, n in raw["served_reference"].items()}),
            served_candidate=Counter({int(k): n for k, n in raw["served_candidate"].items()}),
            frames=int(raw["frames"]),
        )


def _count(
    cand_sure: np.ndarray, matched: np.ndarray, ref_sure: np.ndarray, taken: np.ndarray
) -> Tally:
    """Tally the sure boxes (masks) of both sides, given match()'s result."""
    return Tally(
        cand_sure=int(cand_sure.sum()),
        cand_sure_matched=int((cand_sure & (matched >= 0)).sum()),
        ref_sure=int(ref_sure.sum()),
        ref_sure_matched=int((ref_sure & taken).sum()),
    )


def _tally(
    cand: FrameDetections, ref: FrameDetections, iou: float, sure: float, aware: bool
) -> tuple[Tally, np.ndarray, np.ndarray]:
    matched, taken = match(cand, ref, iou, aware)
    return _count(cand.scores >= sure, matched, ref.scores >= sure, taken), matched, taken


def compare(
    pairs: list[tuple[FrameDetections, FrameDetections]],
    iou: float,
    serve: float,
    margin: float,
) -> Agreement:
    """pairs: (reference, candidate) per frame, each with every box the model returned."""
    sure, present = serve + margin, max(serve - margin, 0.0)
    result = Agreement()
    for ref_all, cand_all in pairs:
        ref = ref_all.subset(ref_all.scores >= present)
        cand = cand_all.subset(cand_all.scores >= present)
        boxes, _, _ = _tally(cand, ref, iou, sure, aware=False)
        classes, matched, taken = _tally(cand, ref, iou, sure, aware=True)
        result.boxes.add(boxes)
        result.classes.add(classes)
        result.frame_disagreement.append(
            (classes.cand_sure - classes.cand_sure_matched)
            + (classes.ref_sure - classes.ref_sure_matched)
        )
        for k in {
            *ref.classes[ref.scores >= sure].tolist(),
            *cand.classes[cand.scores >= sure].tolist(),
        }:
            c_sure = (cand.classes == k) & (cand.scores >= sure)
            r_sure = (ref.classes == k) & (ref.scores >= sure)
            result.per_class.setdefault(int(k), Tally()).add(_count(c_sure, matched, r_sure, taken))
        result.served_reference.update(ref_all.classes[ref_all.scores >= serve].tolist())
        result.served_candidate.update(cand_all.classes[cand_all.scores >= serve].tolist())
        result.frames += 1
    return result
