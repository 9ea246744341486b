from pydantic import Field

from services.core.settings import ServiceSettings, group
from services.tracking.tracker import TrackerConfig


class TrackingSettings(ServiceSettings):
    model_config = group("TRACKING")

    # The main knobs; the rest keep TrackerConfig's measured defaults (docs/tracking.md).
    high_thresh: float = Field(0.5, ge=0, le=1)
    low_thresh: float = Field(0.1, ge=0, le=1)
    new_track_thresh: float = Field(0.5, ge=0, le=1)
    min_hits: int = Field(2, ge=1)  # frames before a track is confirmed (anti-flicker)
    track_buffer: int = Field(30, ge=0)  # frames a lost track is kept before it ends
    class_aware: bool = True
    # Low-score detections also re-find lost tracks and confirm tentative ones.
    low_for_lost: bool = True
    low_for_tentative: bool = True
    # Re-find an unmatched track by IoU with its last matched box (docs/tracking.md).
    recovery: bool = True
    recovery_thresh: float = Field(0.6, ge=0, le=1)
    # Weight of the direction-consistency cost; 0 turns it off.
    direction_weight: float = Field(0.1, ge=0)
    # Follow a moving camera once the scene's motion level passes scene_motion_ref.
    scene_motion: bool = True
    scene_motion_ref: float = Field(0.05, gt=0)

    def tracker_config(self) -> TrackerConfig:
        return TrackerConfig(
            high_thresh=self.high_thresh,
            low_thresh=self.low_thresh,
            new_track_thresh=self.new_track_thresh,
            min_hits=self.min_hits,
            track_buffer=self.track_buffer,
            class_aware=self.class_aware,
            low_for_lost=self.low_for_lost,
            low_for_tentative=self.low_for_tentative,
            recovery_thresh=self.recovery_thresh if self.recovery else None,
            direction_weight=self.direction_weight,
            scene_motion_ref=self.scene_motion_ref if self.scene_motion else None,
        )
