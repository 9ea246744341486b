from pydantic import Field

from services.core.settings import ServiceSettings, group


class PreprocessSettings(ServiceSettings):
    model_config = group("PREPROCESS")

    triton_url: str = "127.0.0.1:8001"
    model_name: str = "yolox_nano"
    # How long start-up waits for the model to load in Triton before giving up.
    model_wait_s: float = Field(300.0, gt=0)
    # Images above this many pixels are rejected before decoding (decompression bombs).
    max_image_pixels: int = Field(40_000_000, gt=0)
    # Mean absolute grey-level change below which a frame counts as frozen.
    frozen_threshold: float = Field(0.5, ge=0)
