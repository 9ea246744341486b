"""Synthetic scenes for the tracking and alert tests: objects moving in straight lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steadyeye.v1.common_pb2 import BoundingBox, FrameRef
from steadyeye.v1.detections_pb2 import Detection, Detections

CLASS_IDS = {"person": 0, "car": 2, "truck": 7}


@dataclass(frozen=True)
class Walker:
    class_name: str
    start: tuple[float, float]  # box centre at frame 0
    velocity: tuple[float, float]  # pixels per frame
    size: tuple[float, float] = (40, 100)

    def box(self, frame_id: int) -> BoundingBox:
        cx = self.start[0] + self.velocity[0] * frame_id
        cy = self.start[1] + self.velocity[1] * frame_id
        w, h = self.size
        return BoundingBox(x1=cx - w / 2, y1=cy - h / 2, x2=cx + w / 2, y2=cy + h / 2)


# Three people walking right (one crosses x=300 and enters x>400) and one walking left, apart
# enough that a correct tracker never confuses them.
CROSSING = (
    Walker("person", (100, 100), (6, 0)),
    Walker("person", (200, 300), (5, 0)),
    Walker("person", (600, 200), (-4, 0)),
)


def detections(
    camera_id: str, frame_id: int, walkers=CROSSING, fps: float = 10.0, t0: float = 1_800_000_000.0
) -> Detections:
    ref = FrameRef(camera_id=camera_id, frame_id=frame_id, width=640, height=480)
    ref.capture_time.FromNanoseconds(int((t0 + frame_id / fps) * 1e9))
    return Detections(
        ref=ref,
        detections=[
            Detection(
                box=w.box(frame_id),
                score=0.9,
                class_id=CLASS_IDS[w.class_name],
                class_name=w.class_name,
            )
            for w in walkers
        ],
    )


class NoState:
    """A tracker state store that keeps nothing: every camera starts fresh."""

    def load(self, key: str) -> None:
        return None

    def save_many(self, states: dict[str, Any]) -> None:
        pass
