"""What goes into the engine (one observation per camera frame) and what comes out (firings)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .geometry import Box

Counts = dict[str, dict[str, int]]


@dataclass(frozen=True, slots=True)
class TrackObs:
    """One confirmed track in a frame, box in source-image pixels (x1, y1, x2, y2)."""

    track_id: int
    class_name: str
    box: Box
    score: float = 1.0


@dataclass(frozen=True, slots=True)
class FrameObservation:
    """Everything the rules see of one frame of one camera.

    frame_id grows per camera; capture_time is seconds (epoch or any clock that is the same for
    all frames of the camera). brightness and sharpness are preprocess's quality measures
    (None: not measured, which input_quality treats as fine).
    """

    camera_id: str
    frame_id: int
    capture_time: float
    tracks: tuple[TrackObs, ...] = ()
    brightness: float | None = None
    sharpness: float | None = None


@dataclass(frozen=True, slots=True)
class SignalObs:
    """One image signal over its drift threshold: its CUSUM statistic against the threshold,
    and its value now against the reference's centre (the monitor's SignalDrift)."""

    name: str
    statistic: float
    threshold: float
    value: float
    reference: float


@dataclass(frozen=True, slots=True)
class DriftObservation:
    """A camera's drift episode started (the signals over their threshold) or ended.

    event_id names the episode (the monitor gives its start and end the same one); frame_id and
    capture_time are the frame that started, or ended, it.
    """

    camera_id: str
    event_id: str
    started: bool
    frame_id: int
    capture_time: float
    signals: tuple[SignalObs, ...] = ()
    also_moving: tuple[str, ...] = ()
    episode_start_frame_id: int = 0
    note: str = ""  # why it ended, when an operator ended it


@dataclass(frozen=True, slots=True)
class Firing:
    """One alert. Equal inputs give equal firings, alert_id included, so it is a dedupe key.

    first_seen/last_seen are capture times: when the episode began (entered the zone, was first
    seen on the new side of the line, the camera's last frame for camera_silent) and the frame
    that fired it. counts is only set for line_crossing: {class: {"in": n, "out": m}} so far.
    resolvable: a resolution follows when the condition ends (drift); resolves: on a resolution,
    the alert_id of the firing it closes.
    """

    alert_id: str
    rule_id: str
    rule_type: str
    severity: str
    camera_id: str
    track_ids: tuple[int, ...]
    first_seen: float
    last_seen: float
    frame_id: int
    message: str
    counts: Counts | None = field(default=None, hash=False)
    resolvable: bool = False
    resolves: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (track_ids as a list)."""
        data = asdict(self)
        data["track_ids"] = list(self.track_ids)
        return data


def alert_id(camera_id: str, rule_id: str, *episode: str | int | float) -> str:
    """sha1 of camera, rule and what identifies the episode (e.g. track id and the frame where it
    began): the same episode replayed, or re-evaluated by another replica, gets the same id."""
    text = json.dumps([camera_id, rule_id, *episode], separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()
