"""ByteTrack-class association over Kalman-predicted boxes, with OC-SORT's recovery and
direction terms and a camera-motion adaptation.

Per update: end tracks lost longer than the buffer; predict every track by the frame-id gap;
stage 1 matches confirmed tracks (tracked and lost) to high-score detections; stage 2 gives the
leftovers a chance at low-score detections (occluded objects score low, and dropping those
detections is what fragments tracks); the recovery stage matches confirmed tracks still left to
the remaining high detections by their last matched box; stage 3 matches tentative tracks to
what is left; leftovers confident enough start tentative tracks. A tentative track is
confirmed, and only then gets an id, after min_hits consecutive matched updates: one miss
removes it, so a flickering false positive never surfaces. A confirmed track missed for a few
frames is reported at its prediction (coasting), as DeepSORT reports one frame. The settings
and what each was measured to do are in config.py and docs/tracking.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from services.tracking.tracker.config import TrackerConfig
from services.tracking.tracker.kalman import KalmanFilter, xyah_to_xyxy, xyxy_to_xyah
from services.tracking.tracker.matching import iou_matrix, linear_assignment
from services.tracking.tracker.state import (
    LOST,
    NO_ID,
    STATE_VERSION,
    TENTATIVE,
    TRACKED,
    TrackTable,
)

Index = npt.NDArray[np.intp]
_NONE = np.zeros(0, dtype=np.intp)


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """What one `update` call decided.

    track_ids[i] is the id of the confirmed track that detection row i belongs to, or -1
    (score below low_thresh, invalid box, unmatched, or its track still tentative); boxes[i]
    is that track's xyxy box after this update (the Kalman estimate, smoother than the
    detection), NaN where track_ids[i] is -1.
    started: ids confirmed in this update. ended: ids that ended in this update (lost longer
    than the buffer, or dropped as the younger of two tracks on one object); each id is
    reported once. stale: frame_id was not after the last processed one; nothing changed.
    coasting_ids / coasting_boxes: confirmed tracks no detection matched in this frame, missed
    for at most coast_frames frames, in id order, with their predicted xyxy box: an object
    briefly occluded or missed by the detector is still reported where it should be.
    """

    frame_id: int
    track_ids: npt.NDArray[np.int64]
    boxes: npt.NDArray[np.float64]
    started: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)
    stale: bool = False
    coasting_ids: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    coasting_boxes: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 4)))


class ByteTracker:
    """One camera's tracker. Not thread-safe; ids start at 1 and are never reused."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self._config = config if config is not None else TrackerConfig()
        self._kf = KalmanFilter(self._config)
        self._tracks = TrackTable.empty()
        self._next_id = 1
        self._last_frame: int | None = None
        # Scene motion level (config.scene_motion_ref): how far detections land from their
        # predictions, in box heights. Restart-safe like the tracks.
        self._scene = 0.0

    @property
    def config(self) -> TrackerConfig:
        return self._config

    @property
    def last_frame_id(self) -> int | None:
        return self._last_frame

    def update(
        self,
        boxes: npt.ArrayLike,
        scores: npt.ArrayLike,
        classes: npt.ArrayLike,
        frame_id: int,
    ) -> TrackUpdate:
        """Associate one frame's detections: (N, 4) xyxy boxes, (N,) scores, (N,) classes."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        classes = np.asarray(classes, dtype=np.int64).reshape(-1)
        n = len(boxes)
        if len(scores) != n or len(classes) != n:
            raise ValueError(f"{n} boxes but {len(scores)} scores and {len(classes)} classes")
        frame_id = int(frame_id)
        track_ids = np.full(n, NO_ID, dtype=np.int64)
        track_boxes = np.full((n, 4), np.nan)
        if self._last_frame is not None and frame_id <= self._last_frame:
            # Late or duplicate delivery: acting on it would rewind the filters.
            return TrackUpdate(frame_id, track_ids, track_boxes, stale=True)
        gap = 1 if self._last_frame is None else frame_id - self._last_frame
        cfg = self._config

        # A track may miss track_buffer frames and still be re-found in the next one; it ends
        # at the end of the update in which it exceeds that. One that exceeded it in frames
        # never delivered (a gap) ends here, before it can take a detection; this also bounds
        # the gap predicted below by the buffer.
        expired = frame_id - self._tracks.last_seen > cfg.track_buffer + 1
        ended = self._tracks.track_id[expired & (self._tracks.track_id != NO_ID)].tolist()
        # Work on a copy (fancy indexing copies), committed at the end: an exception part way
        # leaves the tracker as it was.
        t = self._tracks.take((~expired).nonzero()[0])
        motion = self._scene_ratio()
        t = self._predict(t, gap, motion**cfg.scene_velocity_power)

        valid = (
            np.isfinite(boxes).all(axis=1)
            & np.isfinite(scores)
            & (boxes[:, 2] > boxes[:, 0])
            & (boxes[:, 3] > boxes[:, 1])
            & (scores >= cfg.low_thresh)
        )
        high = (valid & (scores >= cfg.high_thresh)).nonzero()[0]
        low = (valid & (scores < cfg.high_thresh)).nonzero()[0]
        # Every stage matches a subset of the same pairs: one IoU matrix serves all three.
        # Invalid detections get an empty box, so they overlap nothing.
        safe = np.where(valid[:, None], boxes, 0.0)
        iou = iou_matrix(xyah_to_xyxy(t.mean[:, :4]), safe)
        forbidden = t.cls[:, None] != classes[None, :] if cfg.class_aware else None
        turn = self._direction_cost(t, safe) if cfg.direction_weight > 0 else None
        if turn is not None:
            turn *= cfg.direction_weight
        # A moving camera moves every box: the gates widen with the scene's motion.
        widen = motion**cfg.scene_gate_power

        def match(
            rows: Index, cols: Index, thresh: float, fuse: bool
        ) -> tuple[Index, Index, Index, Index]:
            """Match t[rows] to detections[cols]; all results are global indices."""
            if len(rows) == 0 or len(cols) == 0:
                return _NONE, _NONE, rows, cols
            pairs = np.ix_(rows, cols)
            sub = iou[pairs]
            cost = 1.0 - sub * scores[cols] if fuse else 1.0 - sub
            if turn is not None:
                cost += turn[pairs]
            r, c, free_r, free_c = linear_assignment(
                cost, 1.0 - (1.0 - thresh) / widen, None if forbidden is None else forbidden[pairs]
            )
            return rows[r], cols[c], rows[free_r], cols[free_c]

        confirmed = (t.phase != TENTATIVE).nonzero()[0]
        tentative = (t.phase == TENTATIVE).nonzero()[0]
        # Stage 1: confirmed tracks, lost ones included so they can be re-found.
        r1, c1, left_tracks, left_high = match(confirmed, high, cfg.match_thresh, cfg.fuse_score)
        # Stage 2: low detections for the confirmed tracks left (with low_for_lost; else only
        # those matched last frame, as ByteTrack).
        if not cfg.low_for_lost:
            left_tracks = left_tracks[t.phase[left_tracks] == TRACKED]
        r2, c2, missed, left_low = match(left_tracks, low, cfg.low_match_thresh, False)
        # Recovery: confirmed tracks still unmatched, by IoU with their last matched box. Not
        # while the camera moves: the last box is where the object was, not where it is.
        rr, cr = _NONE, _NONE
        if cfg.recovery_thresh is not None and motion == 1.0 and len(missed) and len(left_high):
            last_iou = iou_matrix(t.last_box[missed], safe[left_high])
            r, c, free_r, free_c = linear_assignment(
                1.0 - last_iou,
                cfg.recovery_thresh,
                None if forbidden is None else forbidden[missed][:, left_high],
            )
            rr, cr = missed[r], left_high[c]
            missed, left_high = missed[free_r], left_high[free_c]
        # Stage 3: tentative tracks against the high detections nobody else took, then (with
        # low_for_tentative) the low ones.
        r3, c3, tent_missed, new_dets = match(
            tentative, left_high, cfg.tentative_match_thresh, cfg.fuse_score
        )
        r4, c4 = _NONE, _NONE
        if cfg.low_for_tentative:
            r4, c4, tent_missed, _ = match(tent_missed, left_low, cfg.low_match_thresh, False)
        rows = np.concatenate([r1, r2, rr, r3, r4])
        cols = np.concatenate([c1, c2, cr, c3, c4])
        scene = self._observe_scene(t, rows, cols, boxes, frame_id)
        self._correct(t, rows, cols, boxes, scores, classes, frame_id)
        t.phase[missed] = LOST

        # Stage 4: confident leftovers start tentative tracks (confirmed at once if min_hits=1).
        fresh = new_dets[scores[new_dets] >= cfg.new_track_thresh]
        if len(fresh):
            rows = np.concatenate([rows, np.arange(len(t), len(t) + len(fresh))])
            cols = np.concatenate([cols, fresh])
            t = t.extend(self._start(boxes[fresh], scores[fresh], classes[fresh], frame_id))

        dropped = frame_id - t.last_seen > cfg.track_buffer
        dropped[tent_missed] = True
        if cfg.duplicate_iou is not None:
            dropped[self._duplicates(t, cfg.duplicate_iou, cfg.class_aware)] = True

        # Ids are handed out last, so a track dropped above never consumed one.
        shown = ~dropped[rows] & (t.phase[rows] != TENTATIVE)
        rows, cols = rows[shown], cols[shown]
        fresh_rows = rows[t.track_id[rows] == NO_ID]
        t.track_id[fresh_rows] = np.arange(self._next_id, self._next_id + len(fresh_rows))
        self._next_id += len(fresh_rows)
        track_ids[cols] = t.track_id[rows]
        track_boxes[cols] = xyah_to_xyxy(t.mean[rows, :4])
        ended += t.track_id[dropped & (t.track_id != NO_ID)].tolist()

        self._tracks = t.take(~dropped) if dropped.any() else t
        self._last_frame = frame_id
        self._scene = scene
        coasting = self._coasting(motion)
        return TrackUpdate(
            frame_id,
            track_ids,
            track_boxes,
            started=t.track_id[fresh_rows].tolist(),
            ended=ended,
            coasting_ids=self._tracks.track_id[coasting],
            coasting_boxes=xyah_to_xyxy(self._tracks.mean[coasting, :4]),
        )

    def _coasting(self, motion: float) -> Index:
        """Rows of the confirmed tracks missed for at most coast_frames frames, in id order
        (their mean is this frame's prediction); none while the camera moves, as predictions
        then drift off their objects within a frame or two."""
        t, frames = self._tracks, self._config.coast_frames
        if frames == 0 or motion > 1.0 or len(t) == 0:
            return _NONE
        missed = (t.phase == LOST) & (self._last_frame - t.last_seen <= frames)
        rows = (missed & (t.track_id != NO_ID)).nonzero()[0]
        return rows[np.argsort(t.track_id[rows])]

    def _scene_ratio(self) -> float:
        """Scene motion over its reference, in [1, scene_motion_max]; 1 for a still scene."""
        ref = self._config.scene_motion_ref
        if ref is None:
            return 1.0
        return min(max(self._scene / ref, 1.0), self._config.scene_motion_max)

    def _observe_scene(
        self,
        t: TrackTable,
        rows: Index,
        cols: Index,
        boxes: npt.NDArray[np.float64],
        frame_id: int,
    ) -> float:
        """The scene motion level after this update: the median distance, in box heights,
        between prediction and detection over tracks matched in consecutive frames (a track
        back from a gap would count its gap as motion), averaged over updates."""
        cfg = self._config
        if cfg.scene_motion_ref is None:
            return self._scene
        steady = (t.phase[rows] == TRACKED) & (t.last_seen[rows] == frame_id - 1)
        if not steady.any():
            return self._scene
        predicted = t.mean[rows[steady]]
        measured = boxes[cols[steady]]
        dx = (measured[:, 0] + measured[:, 2]) / 2 - predicted[:, 0]
        dy = (measured[:, 1] + measured[:, 3]) / 2 - predicted[:, 1]
        offset = np.sqrt(dx * dx + dy * dy) / predicted[:, 3]
        # np.median's overhead is ~50 us on a handful of values; a sort is ~2 us.
        offset.sort()
        half = len(offset) // 2
        median = offset[half] if len(offset) % 2 else (offset[half - 1] + offset[half]) / 2
        rate = cfg.scene_motion_rate
        return (1.0 - rate) * self._scene + rate * float(median)

    def _direction_cost(
        self, t: TrackTable, boxes: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64] | None:
        """(tracks, detections): the angle between each track's velocity and the step from its
        last matched box to each detection, in units of pi; 0 where either is shorter than
        direction_min_step box heights, too short for its direction to mean anything. None
        when no track moves that fast (a still scene: nothing to add)."""
        least = self._config.direction_min_step * t.mean[:, 3]
        vx, vy = t.mean[:, 4], t.mean[:, 5]
        speed = np.hypot(vx, vy)
        moving = speed > least
        if not moving.any():
            return None
        # Twice the centres: the factor cancels in the angle and doubles the length test.
        det = boxes[:, :2] + boxes[:, 2:]
        last = t.last_box[:, :2] + t.last_box[:, 2:]
        sx = det[None, :, 0] - last[:, 0, None]
        sy = det[None, :, 1] - last[:, 1, None]
        norm = np.hypot(sx, sy)
        sure = moving[:, None] & (norm > 2 * least[:, None])
        norm *= speed[:, None]
        cos = (sx * vx[:, None] + sy * vy[:, None]) / np.where(sure, norm, 1.0)
        return np.where(sure, np.arccos(np.clip(cos, -1.0, 1.0)) / np.pi, 0.0)

    def _predict(self, t: TrackTable, steps: int, velocity_scale: float) -> TrackTable:
        if len(t) == 0:
            return t
        mean, cov = t.mean, t.cov
        lost = t.phase == LOST
        for _ in range(steps):
            # As ByteTrack: a lost box keeps drifting but stops changing height, which would
            # otherwise run away with no measurement to correct it.
            mean[lost, 7] = 0.0
            mean, cov = self._kf.predict(mean, cov, velocity_scale)
        t.mean, t.cov = mean, cov
        return t

    def _correct(
        self,
        t: TrackTable,
        rows: Index,
        cols: Index,
        boxes: npt.NDArray[np.float64],
        scores: npt.NDArray[np.float64],
        classes: npt.NDArray[np.int64],
        frame_id: int,
    ) -> None:
        if len(rows) == 0:
            return
        t.mean[rows], t.cov[rows] = self._kf.update(
            t.mean[rows], t.cov[rows], xyxy_to_xyah(boxes[cols])
        )
        t.score[rows] = scores[cols]
        t.cls[rows] = classes[cols]
        t.last_seen[rows] = frame_id
        t.last_box[rows] = boxes[cols]
        was_tentative = rows[t.phase[rows] == TENTATIVE]
        t.hits[was_tentative] += 1
        t.phase[rows[t.phase[rows] != TENTATIVE]] = TRACKED  # re-found lost tracks too
        t.phase[was_tentative[t.hits[was_tentative] >= self._config.min_hits]] = TRACKED

    def _start(
        self,
        boxes: npt.NDArray[np.float64],
        scores: npt.NDArray[np.float64],
        classes: npt.NDArray[np.int64],
        frame_id: int,
    ) -> TrackTable:
        n = len(boxes)
        mean, cov = self._kf.initiate(xyxy_to_xyah(boxes))
        phase = TRACKED if self._config.min_hits <= 1 else TENTATIVE
        return TrackTable(
            track_id=np.full(n, NO_ID, dtype=np.int64),
            phase=np.full(n, phase, dtype=np.int64),
            cls=classes.copy(),
            score=scores.copy(),
            hits=np.ones(n, dtype=np.int64),
            start_frame=np.full(n, frame_id, dtype=np.int64),
            last_seen=np.full(n, frame_id, dtype=np.int64),
            mean=mean,
            cov=cov,
            last_box=boxes.copy(),
        )

    @staticmethod
    def _duplicates(t: TrackTable, min_iou: float, class_aware: bool) -> Index:
        """A tracked and a lost track on the same spot are one object that got a second track
        while the first was lost; keep the older so its id survives (ByteTrack's rule)."""
        tracked = (t.phase == TRACKED).nonzero()[0]
        lost = (t.phase == LOST).nonzero()[0]
        if len(tracked) == 0 or len(lost) == 0:
            return _NONE
        boxes = xyah_to_xyxy(t.mean[:, :4])
        same = iou_matrix(boxes[tracked], boxes[lost]) >= min_iou
        if class_aware:
            same &= t.cls[tracked][:, None] == t.cls[lost][None, :]
        a, b = np.nonzero(same)
        p, q = tracked[a], lost[b]
        # On a tie the lost one goes: the tracked one has a measurement this frame.
        return np.where(t.start_frame[p] > t.start_frame[q], p, q)

    def to_state(self) -> dict[str, Any]:
        """JSON-ready snapshot; `from_state` continues exactly where this left off."""
        return {
            "version": STATE_VERSION,
            "last_frame_id": self._last_frame,
            "next_track_id": self._next_id,
            "scene_motion": self._scene,
            "tracks": self._tracks.to_list(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], config: TrackerConfig | None = None) -> ByteTracker:
        version = state.get("version")
        if version not in (1, STATE_VERSION):  # 1 lacks what 2 added; it starts from defaults
            raise ValueError(f"tracker state version {version!r}, expected {STATE_VERSION}")
        tracker = cls(config)
        last = state["last_frame_id"]
        tracker._last_frame = None if last is None else int(last)
        tracker._next_id = int(state["next_track_id"])
        tracker._tracks = TrackTable.from_list(state["tracks"])
        tracker._scene = float(state.get("scene_motion", 0.0))
        return tracker
