"""Draws what the pipeline saw on a frame: tracked boxes with class and track id, the camera's
zones and lines, and the alerts that fired. The console's tiles and the demo's report video
share it, so both show exactly what downstream consumers were told."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import supervision as sv

from services.alert.rules.models import CameraRules, LineCrossing, Occupancy, ZoneIntrusion
from services.core.tracks import detected
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.tracks_pb2 import Tracks

ZONE_COLOR = sv.Color.from_hex("#ffb000")
LINE_COLOR = sv.Color.from_hex("#00d0ff")
ALERT_COLOR = sv.Color.from_hex("#d02020")
# Boxes are coloured by track id (by class where untracked), so one object keeps its colour.
_BOXES = sv.BoxAnnotator(thickness=2, color_lookup=sv.ColorLookup.TRACK)
_LABELS = sv.LabelAnnotator(
    text_scale=0.45, text_padding=3, color_lookup=sv.ColorLookup.TRACK, smart_position=True
)


@dataclass(frozen=True)
class Box:
    """One box to draw, in source-image pixels; track_id 0: not (yet) tracked."""

    x1: float
    y1: float
    x2: float
    y2: float
    class_name: str
    score: float
    track_id: int = 0

    @property
    def label(self) -> str:
        who = f"#{self.track_id} " if self.track_id else ""
        return f"{who}{self.class_name} {self.score:.2f}"


def boxes_of(message: Tracks | Detections) -> list[Box]:
    """A Tracks message's live tracks, or a Detections message's boxes."""
    if isinstance(message, Tracks):
        pairs = [(t.detection, t.track_id) for t in detected(message)]
    else:
        pairs = [(d, 0) for d in message.detections]
    return [
        Box(d.box.x1, d.box.y1, d.box.x2, d.box.y2, d.class_name, d.score, track_id)
        for d, track_id in pairs
    ]


@dataclass(frozen=True)
class Overlay:
    """The geometry of a camera's rules: named polygons and named segments."""

    zones: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = ()
    lines: tuple[tuple[str, tuple[float, float], tuple[float, float]], ...] = ()


def overlay_of(rules: CameraRules | None) -> Overlay:
    if rules is None:
        return Overlay()
    zones, lines = [], []
    for rule in rules.rules:
        if isinstance(rule, ZoneIntrusion | Occupancy) and rule.polygon:
            zones.append((rule.id, tuple(rule.polygon)))
        elif isinstance(rule, LineCrossing):
            lines.append((rule.id, rule.start, rule.end))
    return Overlay(tuple(zones), tuple(lines))


def annotate(
    image: np.ndarray,
    boxes: Sequence[Box],
    overlay: Overlay = Overlay(),
    banners: Iterable[str] = (),
) -> np.ndarray:
    """A copy of the BGR image with the rules, the boxes and one red banner line per alert."""
    scene = image.copy()
    for name, polygon in overlay.zones:
        points = np.asarray(polygon, np.int32)
        scene = sv.draw_polygon(scene, points, ZONE_COLOR, thickness=2)
        _caption(scene, name, points[0], ZONE_COLOR)
    for name, start, end in overlay.lines:
        scene = sv.draw_line(scene, sv.Point(*start), sv.Point(*end), LINE_COLOR, thickness=2)
        _caption(scene, name, np.asarray(start), LINE_COLOR)
    if boxes:
        detections = sv.Detections(
            xyxy=np.array([[b.x1, b.y1, b.x2, b.y2] for b in boxes], np.float32),
            confidence=np.array([b.score for b in boxes], np.float32),
            class_id=np.array([_stable(b.class_name) for b in boxes]),
            tracker_id=np.array([b.track_id or _stable(b.class_name) for b in boxes]),
        )
        scene = _BOXES.annotate(scene, detections)
        scene = _LABELS.annotate(scene, detections, labels=[b.label for b in boxes])
    for row, text in enumerate(banners):
        sv.draw_text(
            scene,
            text,
            sv.Point(8 + 5 * len(text), 16 + 26 * row),
            text_color=sv.Color.WHITE,
            text_scale=0.55,
            text_thickness=1,
            text_padding=5,
            background_color=ALERT_COLOR,
        )
    return scene


def _caption(scene: np.ndarray, text: str, at: np.ndarray, color: sv.Color) -> None:
    height, width = scene.shape[:2]
    x = int(np.clip(at[0], 40, width - 40))
    y = int(np.clip(at[1], 14, height - 14))
    sv.draw_text(
        scene,
        text,
        sv.Point(x, y),
        sv.Color.BLACK,
        text_scale=0.45,
        text_padding=3,
        background_color=color,
    )


def _stable(name: str) -> int:
    return zlib.crc32(name.encode())  # str hash() differs per process: colours would too
