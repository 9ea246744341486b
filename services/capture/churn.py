"""Per camera, what its tracks did: from the tracks topic to ChurnFacts for track_churn.

Kept in memory: a camera's tracks arrive on one partition, so one replica sees them all. After a
restart or a rebalance the tracks already running are met half way (no confirmation seen): they
never count as short-lived, so a restart makes no false churn, only misses some.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from services.capture.strategies import ChurnFacts, Ended, Switch
from services.core.tracks import DETECTED, detected
from steadyeye.v1.tracks_pb2 import Tracks, TrackState

K = TypeVar("K")
V = TypeVar("V")
Box = tuple[float, float, float, float]
MAX_CAMERAS = 10_000
MAX_TRACKS_PER_CAMERA = 2_000  # far above any real scene; a hostile stream cannot grow memory


class Bounded(OrderedDict[K, V], Generic[K, V]):
    """A dict that forgets its least recently set entries beyond `size`."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


@dataclass
class _Track:
    first: int | None  # the frame it was confirmed in; None: confirmed before we looked
    last: int
    box: Box


@dataclass
class _Camera:
    last_frame: int
    tracks: Bounded[int, _Track]


def iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class TrackMemory:
    def __init__(self, switch_lookback: int = 0) -> None:
        """switch_lookback: how many frames back a lost track can be an id switch's old id
        (the largest switch_within_frames; 0: no switch detection)."""
        self._lookback = switch_lookback
        self._cameras: Bounded[str, _Camera] = Bounded(MAX_CAMERAS)

    def clear(self) -> None:
        self._cameras.clear()

    def observe(self, message: Tracks) -> ChurnFacts | None:
        """The frame's churn; None for a frame at or before one already seen (a replay)."""
        camera_id, frame_id = message.ref.camera_id, message.ref.frame_id
        camera = self._cameras.get(camera_id)
        if camera is None:
            camera = _Camera(-1, Bounded(MAX_TRACKS_PER_CAMERA))
        elif frame_id <= camera.last_frame:
            return None
        self._cameras[camera_id] = camera
        # Lost, not matched in this frame: what a new track may have taken over from.
        present = {track.track_id for track in detected(message)}
        lost = [
            (track_id, track)
            for track_id, track in camera.tracks.items()
            if track_id not in present and 0 < frame_id - track.last <= self._lookback
        ]
        started, ended, switches = 0, [], []
        for track in message.tracks:
            if track.state == TrackState.TRACK_STATE_ENDED:
                gone = camera.tracks.pop(track.track_id, None)
                if gone is not None and gone.first is not None:
                    ended.append(Ended(track.track_id, gone.first, gone.last))
                continue
            if track.state not in DETECTED:
                continue  # coasted: not seen in this frame, so lost as far as churn goes
            b = track.detection.box
            box = (b.x1, b.y1, b.x2, b.y2)
            known = camera.tracks.get(track.track_id)
            if track.state == TrackState.TRACK_STATE_STARTED:
                started += 1
                camera.tracks[track.track_id] = _Track(frame_id, frame_id, box)
                switches += self._switches(track.track_id, box, frame_id, lost)
            else:
                camera.tracks[track.track_id] = _Track(
                    known.first if known else None, frame_id, box
                )
        camera.last_frame = frame_id
        return ChurnFacts(camera_id, frame_id, started, tuple(ended), tuple(switches))

    @staticmethod
    def _switches(
        new_id: int, box: Box, frame_id: int, lost: list[tuple[int, _Track]]
    ) -> list[Switch]:
        best = max(((iou(box, t.box), old_id, t) for old_id, t in lost), default=None)
        if best is None or best[0] <= 0:
            return []
        overlap, old_id, track = best
        return [Switch(new_id, old_id, overlap, frame_id - track.last)]
