from pydantic import Field

from services.core.settings import ServiceSettings, group
from services.tracking.tracker import TrackerConfig

_DEFAULT = TrackerConfig()


class TrackingSettings(ServiceSettings):
    model_config = group("TRACKING")

    # The main knobs, with TrackerConfig's measured defaults (one source: docs/tracking.md);
    # the rest keep those defaults.
    high_thresh: float = Field(_DEFAULT.high_thresh, ge=0, le=1)
    low_thresh: float = Field(_DEFAULT.low_thresh, ge=0, le=1)
    new_track_thresh: float = Field(_DEFAULT.new_track_thresh, ge=0, le=1)
    min_hits: int = Field(_DEFAULT.min_hits, ge=1)  # frames before a track is confirmed
    track_buffer: int = Field(_DEFAULT.track_buffer, ge=0)  # frames a lost track is kept
    # Frames a missed track is still published, at its prediction (TRACK_STATE_COASTED); 0: off.
    coast_frames: int = Field(_DEFAULT.coast_frames, ge=0)
    class_aware: bool = _DEFAULT.class_aware
    # Low-score detections also re-find lost tracks and confirm tentative ones.
    low_for_lost: bool = _DEFAULT.low_for_lost
    low_for_tentative: bool = _DEFAULT.low_for_tentative
    # Re-find an unmatched track by IoU with its last matched box (docs/tracking.md).
    recovery: bool = _DEFAULT.recovery_thresh is not None
    recovery_thresh: float = Field(_DEFAULT.recovery_thresh or 0.0, ge=0, le=1)
    # Weight of the direction-consistency cost; 0 turns it off.
    direction_weight: float = Field(_DEFAULT.direction_weight, ge=0)
    # Follow a moving camera once the scene's motion level passes scene_motion_ref.
    scene_motion: bool = _DEFAULT.scene_motion_ref is not None
    scene_motion_ref: float = Field(_DEFAULT.scene_motion_ref or 1.0, gt=0)

    def tracker_config(self) -> TrackerConfig:
        # Every knob named as in TrackerConfig is copied; the two with a switch are None when off.
        return TrackerConfig(
            **self.model_dump(include=_COPIED),
            recovery_thresh=self.recovery_thresh if self.recovery else None,
            scene_motion_ref=self.scene_motion_ref if self.scene_motion else None,
        )


_COPIED = (TrackingSettings.model_fields.keys() & TrackerConfig.__dataclass_fields__.keys()) - {
    "recovery_thresh",
    "scene_motion_ref",
}
