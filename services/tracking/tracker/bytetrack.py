"""ByteTrack: two-stage IoU association over Kalman-predicted boxes.

Per update: end tracks lost longer than the buffer; predict every track by the frame-id gap;
stage 1 matches confirmed tracks (tracked and lost) to high-score detections; stage 2 gives the
still-tracked leftovers a chance at low-score detections (occluded objects score low, and
dropping those detections is what fragments tracks); stage 3 matches tentative tracks to the
remaining high detections; leftovers confident enough start tentative tracks. A tentative track
is confirmed, and only then gets an id, after min_hits consecutive matched updates: one miss
removes it, so a flickering false positive never surfaces.
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
    (score below low_thresh, invalid box, unmatched, or its track still tentative).
    started: ids confirmed in this update. ended: ids that ended in this update (lost longer
    than the buffer, or dropped as the younger of two tracks on one object); each id is
    reported once. stale: frame_id was not after the last processed one; nothing changed.
    """

    frame_id: int
    track_ids: npt.NDArray[np.int64]
    started: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)
    stale: bool = False


class ByteTracker:
    """One camera's tracker. Not thread-safe; ids start at 1 and are never reused."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self._config = config if config is not None else TrackerConfig()
        self._kf = KalmanFilter(self._config)
        self._tracks = TrackTable.empty()
        self._next_id = 1
        self._last_frame: int | None = None

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
        if self._last_frame is not None and frame_id <= self._last_frame:
            # Late or duplicate delivery: acting on it would rewind the filters.
            return TrackUpdate(frame_id, track_ids, stale=True)
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
        t = self._predict(t, gap)

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
        iou = iou_matrix(xyah_to_xyxy(t.mean[:, :4]), np.where(valid[:, None], boxes, 0.0))
        forbidden = t.cls[:, None] != classes[None, :] if cfg.class_aware else None

        def match(
            rows: Index, cols: Index, thresh: float, fuse: bool
        ) -> tuple[Index, Index, Index, Index]:
            """Match t[rows] to detections[cols]; all results are global indices."""
            if len(rows) == 0 or len(cols) == 0:
                return _NONE, _NONE, rows, cols
            sub = iou[rows][:, cols]
            cost = 1.0 - sub * scores[cols] if fuse else 1.0 - sub
            r, c, free_r, free_c = linear_assignment(
                cost, thresh, None if forbidden is None else forbidden[rows][:, cols]
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
        # Stage 3: tentative tracks against the high detections nobody else took, then (with
        # low_for_tentative) the low ones.
        r3, c3, tent_missed, new_dets = match(
            tentative, left_high, cfg.tentative_match_thresh, cfg.fuse_score
        )
        r4, c4 = _NONE, _NONE
        if cfg.low_for_tentative:
            r4, c4, tent_missed, _ = match(tent_missed, left_low, cfg.low_match_thresh, False)
        rows = np.concatenate([r1, r2, r3, r4])
        cols = np.concatenate([c1, c2, c3, c4])
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
        ended += t.track_id[dropped & (t.track_id != NO_ID)].tolist()

        self._tracks = t.take(~dropped) if dropped.any() else t
        self._last_frame = frame_id
        return TrackUpdate(
            frame_id, track_ids, started=t.track_id[fresh_rows].tolist(), ended=ended
        )

    def _predict(self, t: TrackTable, steps: int) -> TrackTable:
        if len(t) == 0:
            return t
        mean, cov = t.mean, t.cov
        lost = t.phase == LOST
        for _ in range(steps):
            # As ByteTrack: a lost box keeps drifting but stops changing height, which would
            # otherwise run away with no measurement to correct it.
            mean[lost, 7] = 0.0
            mean, cov = self._kf.predict(mean, cov)
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
            "tracks": self._tracks.to_list(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], config: TrackerConfig | None = None) -> ByteTracker:
        version = state.get("version")
        if version != STATE_VERSION:
            raise ValueError(f"tracker state version {version!r}, expected {STATE_VERSION}")
        tracker = cls(config)
        last = state["last_frame_id"]
        tracker._last_frame = None if last is None else int(last)
        tracker._next_id = int(state["next_track_id"])
        tracker._tracks = TrackTable.from_list(state["tracks"])
        return tracker
