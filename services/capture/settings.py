from pathlib import Path

from pydantic import Field

from services.core.settings import ServiceSettings, group


class CaptureSettings(ServiceSettings):
    """Frames the model struggles with -> a dataset ready to label (README: Retraining data)."""

    model_config = group("CAPTURE")

    # Which frames to take, in order, with their limits (examples/capture-strategies.yaml).
    strategies_file: Path
    # Where the dataset goes: a directory or any fsspec URL (file://, s3://, gs://...).
    dataset_url: str
    # The served model's classes, in order, come from its contract in Triton (services.contract).
    triton_url: str = "127.0.0.1:8001"
    model_name: str = "yolox_nano"
    model_wait_s: float = Field(300.0, gt=0)
    # A frame whose perceptual hash (256 bits) is within this many bits of one of the camera's
    # recent captures for the same reason is a near-duplicate and skipped. On the sample clip
    # consecutive frames differ by 0-18 bits, frames 2 s or more apart by 32 or more.
    dedupe_distance: int = Field(20, ge=0, le=256)
    # How many of a camera's captures, and for how long, new frames are compared with.
    dedupe_recent: int = Field(64, ge=1, le=10_000)
    dedupe_window_s: int = Field(3600, ge=1)
    # The dataset's index files are rewritten about this often (and when the service stops).
    flush_interval_s: float = Field(60.0, gt=0)
    jpeg_quality: int = Field(90, ge=1, le=100)
    # Stored images above this many pixels are refused before decoding (decompression bombs).
    max_image_pixels: int = Field(40_000_000, gt=0)
    # track_churn: a camera's last this many frames' detections stay in memory, so a short-lived
    # track's last frame can still be captured when its end is reported (by default the tracker
    # reports it 32 frames after the track's last match).
    churn_history_frames: int = Field(64, ge=1, le=10_000)
