from pydantic import Field

from services.core.settings import ServiceSettings, group


class TrackingSettings(ServiceSettings):
    model_config = group("TRACKING")

    # The main ByteTrack knobs; the rest keep TrackerConfig's measured defaults.
    high_thresh: float = Field(0.5, ge=0, le=1)
    low_thresh: float = Field(0.1, ge=0, le=1)
    new_track_thresh: float = Field(0.6, ge=0, le=1)
    min_hits: int = Field(2, ge=1)  # frames before a track is confirmed (anti-flicker)
    track_buffer: int = Field(30, ge=0)  # frames a lost track is kept before it ends
    class_aware: bool = True
