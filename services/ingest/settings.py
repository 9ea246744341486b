from typing import Literal

from pydantic import Field

from services.core.settings import ServiceSettings, group


class IngestSettings(ServiceSettings):
    model_config = group("INGEST")

    cameras_file: str
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
    backlog_check_s: float = Field(0.5, gt=0)
    live_buffer_frames: int = Field(2, ge=1)
