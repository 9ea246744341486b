from pydantic import Field

from services.core.settings import ServiceSettings, group


class MonitorSettings(ServiceSettings):
    """Per-camera drift monitoring (docs/design/drift-monitor.md for why these defaults)."""

    model_config = group("MONITOR")

    # Frames a camera's reference is learned from (50 s at 10 fps).
    warmup_frames: int = Field(500, ge=50)
    # Expected frames between false alarms per camera, which the thresholds are calibrated to.
    ert_frames: int = Field(10_000, ge=100)
    # CUSUM allowance and clip, in the reference's robust scales: only shifts of about twice the
    # allowance count, since a scene wanders by 4-5 scales beyond any warm-up.
    allowance: float = Field(4.0, gt=0)
    clip: float = Field(12.0, gt=0)
    # No threshold below this: a change must persist (at the clip, about 10 frames) to alarm.
    min_threshold: float = Field(80.0, gt=0)
    # An episode ends after this many frames with every signal back within the allowance.
    end_calm_frames: int = Field(50, ge=1)
