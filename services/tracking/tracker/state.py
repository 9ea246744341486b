"""The tracker's tracks as columns of arrays, and their JSON form.

Columns rather than one object per track: every step (predict, cost, correct, expire) is then
one numpy call over all tracks, which is most of the tracker's speed.

The snapshot is plain lists, ints and floats, so it survives json (and Redis) exactly: Python
writes a float with the shortest text that reads back to the same bits, which is what makes a
restored tracker continue bit-for-bit like the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from services.tracking.tracker.kalman import xyah_to_xyxy

# 2 added each track's last matched box and the scene motion level; 1 still loads.
STATE_VERSION = 2
NO_ID = -1

# Phases of a track.
TENTATIVE = 0  # seen, not yet min_hits updates in a row; no id
TRACKED = 1  # confirmed and matched in its last update
LOST = 2  # confirmed, unmatched for up to track_buffer frames
PHASE_NAMES = ("tentative", "tracked", "lost")

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(slots=True)
class TrackTable:
    track_id: Ints  # NO_ID until confirmed
    phase: Ints
    cls: Ints
    score: Floats
    hits: Ints  # consecutive matched updates while tentative
    start_frame: Ints
    last_seen: Ints  # frame id of the last match
    mean: Floats  # (n, 8) Kalman state
    cov: Floats  # (n, 3, 4) per-axis covariance blocks, see kalman.py
    last_box: Floats  # (n, 4) xyxy of the last matched detection

    @classmethod
    def empty(cls) -> TrackTable:
        return cls(
            track_id=np.zeros(0, np.int64),
            phase=np.zeros(0, np.int64),
            cls=np.zeros(0, np.int64),
            score=np.zeros(0),
            hits=np.zeros(0, np.int64),
            start_frame=np.zeros(0, np.int64),
            last_seen=np.zeros(0, np.int64),
            mean=np.zeros((0, 8)),
            cov=np.zeros((0, 3, 4)),
            last_box=np.zeros((0, 4)),
        )

    def __len__(self) -> int:
        return len(self.track_id)

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> TrackTable:
        return TrackTable(
            track_id=self.track_id[index],
            phase=self.phase[index],
            cls=self.cls[index],
            score=self.score[index],
            hits=self.hits[index],
            start_frame=self.start_frame[index],
            last_seen=self.last_seen[index],
            mean=self.mean[index],
            cov=self.cov[index],
            last_box=self.last_box[index],
        )

    def extend(self, other: TrackTable) -> TrackTable:
        return TrackTable(
            track_id=np.concatenate([self.track_id, other.track_id]),
            phase=np.concatenate([self.phase, other.phase]),
            cls=np.concatenate([self.cls, other.cls]),
            score=np.concatenate([self.score, other.score]),
            hits=np.concatenate([self.hits, other.hits]),
            start_frame=np.concatenate([self.start_frame, other.start_frame]),
            last_seen=np.concatenate([self.last_seen, other.last_seen]),
            mean=np.concatenate([self.mean, other.mean]),
            cov=np.concatenate([self.cov, other.cov]),
            last_box=np.concatenate([self.last_box, other.last_box]),
        )

    def to_list(self) -> list[dict[str, Any]]:
        """One dict per track, all plain Python values."""
        columns = zip(
            self.track_id.tolist(),
            self.phase.tolist(),
            self.cls.tolist(),
            self.score.tolist(),
            self.hits.tolist(),
            self.start_frame.tolist(),
            self.last_seen.tolist(),
            self.mean.tolist(),
            self.cov.tolist(),
            self.last_box.tolist(),
            strict=True,
        )
        return [
            {
                "track_id": tid,
                "phase": PHASE_NAMES[phase],
                "cls": cls,
                "score": score,
                "hits": hits,
                "start_frame": start,
                "last_seen": seen,
                "mean": mean,
                "cov": cov,
                "last_box": box,
            }
            for tid, phase, cls, score, hits, start, seen, mean, cov, box in columns
        ]

    @classmethod
    def from_list(cls, tracks: list[dict[str, Any]]) -> TrackTable:
        """Tracks from `to_list`; a version-1 track has no last box and gets its estimate's."""
        if not tracks:
            return cls.empty()
        mean = np.asarray([t["mean"] for t in tracks], dtype=np.float64)
        cov = np.asarray([t["cov"] for t in tracks], dtype=np.float64)
        if mean.shape != (len(tracks), 8) or cov.shape != (len(tracks), 3, 4):
            raise ValueError(f"bad track state shapes {mean.shape}, {cov.shape}")
        if all("last_box" in t for t in tracks):
            last_box = np.asarray([t["last_box"] for t in tracks], dtype=np.float64)
        else:
            last_box = xyah_to_xyxy(mean[:, :4])
        if last_box.shape != (len(tracks), 4):
            raise ValueError(f"bad last box shape {last_box.shape}")

        def ints(key: str) -> Ints:
            return np.asarray([int(t[key]) for t in tracks], dtype=np.int64)

        return cls(
            track_id=ints("track_id"),
            phase=np.asarray([PHASE_NAMES.index(t["phase"]) for t in tracks], dtype=np.int64),
            cls=ints("cls"),
            score=np.asarray([float(t["score"]) for t in tracks]),
            hits=ints("hits"),
            start_frame=ints("start_frame"),
            last_seen=ints("last_seen"),
            mean=mean,
            cov=cov,
            last_box=last_box,
        )
