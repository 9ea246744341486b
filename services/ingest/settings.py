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
