"""Captured frames for the dataset tests: small real JPEGs with boxes chosen by the test."""

from __future__ import annotations

from datetime import UTC, datetime

import cv2
import numpy as np

from services.capture.captured import Box, Captured

CLASSES = ("person", "bicycle", "car")
WHEN = datetime(2025, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)


def jpeg(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", pixels)
    assert ok
    return data.tobytes()


def box(x1: float, y1: float, x2: float, y2: float, score: float = 0.8, cls: str = "person") -> Box:
    return Box(x1, y1, x2, y2, score, CLASSES.index(cls) if cls in CLASSES else 99, cls)


def frame(
    camera_id: str = "cam-1",
    frame_id: int = 1,
    when: datetime = WHEN,
    reason: str = "uncertain-people",
    boxes: tuple[Box, ...] = (box(8, 6, 40, 30),),
    candidates: tuple[Box, ...] = (),
    width: int = 64,
    height: int = 48,
    image: bytes | None = None,
    drift_event_id: str = "",
    class_names: tuple[str, ...] = CLASSES,
) -> Captured:
    return Captured(
        camera_id=camera_id,
        frame_id=frame_id,
        capture_time=when,
        reason=reason,
        strategy=reason.split("-")[0],
        model_name="yolox_nano",
        model_version="1",
        width=width,
        height=height,
        jpeg=image if image is not None else jpeg(width, height, frame_id),
        boxes=boxes,
        candidates=candidates,
        class_names=class_names,
        drift_event_id=drift_event_id,
        extra={"band": "0.15-0.35"},
    )
