from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from services.core.settings import ServiceSettings, group


class IngestSettings(ServiceSettings):
    model_config = group("INGEST")

    # A cameras file: this replica runs its cameras, fixed at start. Unset: the cameras of
    # steadyeye.cameras.v1 (`steadyeye cameras apply`), shared by every replica's group.
    cameras_file: str | None = None
    # How long a camera may run on two replicas at once after one stalled (services/ingest/
    # lease.py); also how long a dead replica's cameras wait beyond the group's session timeout.
    lease_ttl_s: float = Field(5.0, gt=0.5)
    # bgr24: raw frames through Redis, no codec cost (one host, fast network);
    # jpeg: about 10x smaller payloads for a congested network, at about 3 ms per frame.
    encoding: Literal["bgr24", "jpeg"] = "bgr24"
    jpeg_quality: int = Field(90, ge=1, le=100)
    reconnect_initial_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)
    # A live stream that yields no frame for this long is reopened.
    stale_after_s: float = Field(10.0, gt=0)
    # Backpressure: frames published but not yet taken by inference, all cameras together
    # (size it as cameras x seconds of buffer x fps; each waiting raw frame holds ~1.3 MB in
    # Redis). Above it file sources pause and live sources keep only their newest
    # `live_buffer_frames`, dropping the oldest (counted). 0: no limit.
    max_backlog_frames: int = Field(600, ge=0)
    # Priorities (the cameras file's `priority`): low-priority cameras give way once the
    # backlog passes this share of the limit, normal ones at theirs, high ones at the limit;
    # so while the pipeline cannot keep up with everyone, high-priority cameras keep their rate.
    backlog_share_low: float = Field(0.5, gt=0, le=1)
    backlog_share_normal: float = Field(0.8, gt=0, le=1)
    backlog_check_s: float = Field(0.5, gt=0)
    live_buffer_frames: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _shares_in_order(self) -> IngestSettings:
        if self.backlog_share_low > self.backlog_share_normal:
            raise ValueError(
                f"STEADYEYE_INGEST_BACKLOG_SHARE_LOW ({self.backlog_share_low}) must not exceed "
                f"STEADYEYE_INGEST_BACKLOG_SHARE_NORMAL ({self.backlog_share_normal})"
            )
        return self

    def backlog_shares(self) -> dict[str, float]:
        return {"low": self.backlog_share_low, "normal": self.backlog_share_normal, "high": 1.0}
