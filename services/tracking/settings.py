from pydantic import Field

from services.core.settings import ServiceSettings, group


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
    # Re-find an unmatched track by its last matched box (None: off).
    recovery_thresh: float | None = Field(0.6, ge=0, le=1)
    # Weight of the direction-consistency cost (0: off).
    direction_weight: float = Field(0.1, ge=0)
    # Scene motion above which the tracker follows a moving camera (None: off).
    scene_motion_ref: float | None = Field(0.05, gt=0)
