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
from services.tracking.tracker.matching import association_cost, iou_matrix, linear_assignment
from services.tracking.tracker.state import NO_ID, STATE_VERSION, Phase, Track


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """What one `update` call decided.

    track_ids[i] is the id of the confirmed track that detection row i belongs to, or -1
    (below low_thresh, unmatched, invalid box, or its track still tentative).
    started: ids confirmed in this update. ended: ids that ended in this update (lost longer
    than the buffer, or merged into an older duplicate); each id is reported once.
    stale: frame_id was not after the last processed one; nothing was changed.
    """

    frame_id: int
    track_ids: npt.NDArray[np.int64]
    started: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)
    stale: bool = False


class ByteTracker:
    def __init__(self, config: TrackerConfig | None = None) -> None:
        self._config = config if config is not None else TrackerConfig()
        self._kf = KalmanFilter(self._config)
        self._tracks: list[Track] = []
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
        """Associate one frame's detections (xyxy boxes, scores, integer classes)."""
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
        self._last_frame = frame_id
        cfg = self._config
        ended: list[int] = []

        # Expire first, so a track past its buffer cannot take a detection, and so the gap
        # below is bounded by the buffer for every track that is still predicted.
        tracks: list[Track] = []
        for t in self._tracks:
            if frame_id - t.last_seen > cfg.track_buffer:
                if t.track_id != NO_ID:
                    ended.append(t.track_id)
            else:
                tracks.append(t)
        self._predict(tracks, gap)

        valid = (
            np.isfinite(boxes).all(axis=1)
            & np.isfinite(scores)
            & (boxes[:, 2] > boxes[:, 0])
            & (boxes[:, 3] > boxes[:, 1])
            & (scores >= cfg.low_thresh)
        )
        high = np.flatnonzero(valid & (scores >= cfg.high_thresh))
        low = np.flatnonzero(valid & (scores < cfg.high_thresh))
        track_boxes = (
            xyah_to_xyxy(np.stack([t.mean[:4] for t in tracks])) if tracks else np.zeros((0, 4))
        )
        track_cls = np.array([t.cls for t in tracks], dtype=np.int64)

        def match(
            rows: list[int], cols: npt.NDArray[np.intp], thresh: float, fuse: bool
        ) -> tuple[list[tuple[int, int]], list[int], list[int]]:
            """Match tracks[rows] to detections[cols]; returns global indices."""
            cost, forbidden = association_cost(
                track_boxes[rows],
                track_cls[rows],
                boxes[cols],
                scores[cols],
                classes[cols],
                fuse_score=fuse,
                class_aware=cfg.class_aware,
            )
            pairs, un_rows, un_cols = linear_assignment(cost, thresh, forbidden)
            return (
                [(rows[r], int(cols[c])) for r, c in pairs],
                [rows[r] for r in un_rows],
                [int(cols[c]) for c in un_cols],
            )

        confirmed = [i for i, t in enumerate(tracks) if t.phase is not Phase.TENTATIVE]
        tentative = [i for i, t in enumerate(tracks) if t.phase is Phase.TENTATIVE]

        # Stage 1: confirmed tracks, lost ones included so they can be re-found.
        matches, left_tracks, left_high = match(confirmed, high, cfg.match_thresh, cfg.fuse_score)
        # Stage 2: low detections only for tracks matched last frame; a lost track's prediction
        # is too uncertain to trust a weak detection near it.
        still_tracked = [i for i in left_tracks if tracks[i].phase is Phase.TRACKED]
        low_matches, missed, _ = match(still_tracked, low, cfg.low_match_thresh, False)
        matches += low_matches
        for i in missed:
            tracks[i].phase = Phase.LOST
        # Stage 3: tentative tracks, only against high detections nobody else took.
        tent_matches, tent_missed, new_dets = match(
            tentative,
            np.asarray(left_high, dtype=np.intp),
            cfg.tentative_match_thresh,
            cfg.fuse_score,
        )
        matches += tent_matches
        dropped = {id(tracks[i]) for i in tent_missed}

        self._correct(tracks, matches, boxes, scores, classes, frame_id)

        # Stage 4: confident leftovers start tentative tracks.
        fresh = [j for j in new_dets if scores[j] >= cfg.new_track_thresh]
        if fresh:
            idx = np.asarray(fresh, dtype=np.intp)
            means, covs = self._kf.initiate(xyxy_to_xyah(boxes[idx]))
            for k, j in enumerate(fresh):
                t = Track(
                    track_id=NO_ID,
                    phase=Phase.TENTATIVE,
                    cls=int(classes[j]),
                    score=float(scores[j]),
                    mean=means[k],
                    cov=covs[k],
                    hits=1,
                    start_frame=frame_id,
                    last_seen=frame_id,
                )
                if cfg.min_hits <= 1:
                    t.phase = Phase.TRACKED
                tracks.append(t)
                matches.append((len(tracks) - 1, j))

        if cfg.duplicate_iou is not None:
            dropped |= self._duplicates(tracks, frame_id, cfg.duplicate_iou)

        survivors: list[Track] = []
        for t in tracks:
            if id(t) in dropped:
                if t.track_id != NO_ID:
                    ended.append(t.track_id)
            else:
                survivors.append(t)
        self._tracks = survivors

        # Ids are handed out last, so a track dropped above never consumed one.
        started: list[int] = []
        for i, j in matches:
            t = tracks[i]
            if id(t) in dropped or t.phase is Phase.TENTATIVE:
                continue
            if t.track_id == NO_ID:
                t.track_id = self._next_id
                self._next_id += 1
                started.append(t.track_id)
            track_ids[j] = t.track_id
        return TrackUpdate(frame_id, track_ids, started=started, ended=ended)

    def _predict(self, tracks: list[Track], steps: int) -> None:
        if not tracks:
            return
        mean = np.stack([t.mean for t in tracks])
        cov = np.stack([t.cov for t in tracks])
        lost = np.array([t.phase is Phase.LOST for t in tracks])
        for _ in range(steps):
            # As ByteTrack: a lost box keeps drifting but stops changing height, which would
            # otherwise run away with no measurement to correct it.
            mean[lost, 7] = 0.0
            mean, cov = self._kf.predict(mean, cov)
        for t, m, c in zip(tracks, mean, cov, strict=True):
            t.mean, t.cov = m, c

    def _correct(
        self,
        tracks: list[Track],
        matches: list[tuple[int, int]],
        boxes: npt.NDArray[np.float64],
        scores: npt.NDArray[np.float64],
        classes: npt.NDArray[np.int64],
        frame_id: int,
    ) -> None:
        if not matches:
            return
        rows = [i for i, _ in matches]
        dets = np.asarray([j for _, j in matches], dtype=np.intp)
        mean, cov = self._kf.update(
            np.stack([tracks[i].mean for i in rows]),
            np.stack([tracks[i].cov for i in rows]),
            xyxy_to_xyah(boxes[dets]),
        )
        for k, (i, j) in enumerate(matches):
            t = tracks[i]
            t.mean, t.cov = mean[k], cov[k]
            t.score = float(scores[j])
            t.cls = int(classes[j])
            t.last_seen = frame_id
            if t.phase is Phase.TENTATIVE:
                t.hits += 1
                if t.hits >= self._config.min_hits:
                    t.phase = Phase.TRACKED
            else:
                t.phase = Phase.TRACKED

    @staticmethod
    def _duplicates(tracks: list[Track], frame_id: int, min_iou: float) -> set[int]:
        """A tracked and a lost track on the same spot are one object that got a second track
        while the first was lost; keep the older so its id survives (ByteTrack's rule)."""
        tracked = [t for t in tracks if t.phase is Phase.TRACKED]
        lost = [t for t in tracks if t.phase is Phase.LOST]
        if not tracked or not lost:
            return set()
        iou = iou_matrix(
            xyah_to_xyxy(np.stack([t.mean[:4] for t in tracked])),
            xyah_to_xyxy(np.stack([t.mean[:4] for t in lost])),
        )
        out: set[int] = set()
        for a, b in zip(*np.nonzero(iou >= min_iou), strict=True):
            p, q = tracked[a], lost[b]
            # The lost one goes on a tie: the tracked one has a measurement this frame.
            younger = p if frame_id - p.start_frame < frame_id - q.start_frame else q
            out.add(id(younger))
        return out

    def to_state(self) -> dict[str, Any]:
        """JSON-ready snapshot; `from_state` continues exactly where this left off."""
        return {
            "version": STATE_VERSION,
            "last_frame_id": self._last_frame,
            "next_track_id": self._next_id,
            "tracks": [t.to_dict() for t in self._tracks],
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
        tracker._tracks = [Track.from_dict(t) for t in state["tracks"]]
        return tracker
