"""The one data type between the capture service and the datasets it writes: a frame chosen for
labelling, its pixels (privacy regions already blacked out), why it was chosen and what the
model saw in it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Box:
    """A detection in source-image pixels."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    class_id: int
    class_name: str


@dataclass(frozen=True)
class Captured:
    camera_id: str  # untrusted text: never used in a path unescaped
    frame_id: int
    capture_time: datetime  # UTC, when ingest read the frame
    reason: str  # the strategy's name from the strategies file (e.g. "uncertain-people")
    strategy: str  # its type: random, uncertain, count, classes, drift, track_churn, disagreement
    model_name: str
    model_version: str
    width: int
    height: int
    jpeg: bytes  # the frame as captured (JPEG), privacy regions blacked out
    boxes: tuple[Box, ...]  # what the model served (at or above the serving threshold)
    candidates: tuple[Box, ...] = ()  # below the serving threshold (for the uncertain ones)
    class_names: tuple[str, ...] = ()  # the model's classes in order: class_id indexes them
    drift_event_id: str = ""  # the open drift episode, if any
    extra: dict[str, str] = field(default_factory=dict)  # strategy details (e.g. score band)
