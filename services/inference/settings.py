from pathlib import Path

from pydantic import Field

from services.core.settings import ServiceSettings, group


class InferenceSettings(ServiceSettings):
    model_config = group("INFERENCE")

    triton_url: str = "127.0.0.1:8001"
    model_name: str = "yolox_nano"
    # The models to answer with, in order, each with a latency budget: a lighter fallback
    # serves while the primary breaks its budget or fails (services/inference/tiers_file.py).
    # Unset: TRITON_URL and MODEL_NAME are the only tier.
    tiers_file: Path | None = None
    model_wait_s: float = Field(300.0, gt=0)
    # Requests in flight at once: enough for Triton's dynamic batcher to form batches, bounded so
    # a burst cannot queue unbounded work (and memory) in Triton.
    max_in_flight: int = Field(8, ge=1, le=256)
    # Frames per request (capped by the model's max_batch_size). 1 leaves batching to Triton's
    # dynamic batcher: on the CPU model server, requests of 4 or 8 frames cut this service's
    # CPU but also the pipeline's throughput (docs/performance.md); try more on a GPU.
    max_batch: int = Field(1, ge=1, le=256)
    request_timeout_s: float = Field(5.0, gt=0)
    retries: int = Field(3, ge=0)
    retry_backoff_s: float = Field(0.2, ge=0)
    # The serving threshold: detections at or above it go downstream. Those below it but at or
    # above candidate_min_score (and the model's own threshold) travel as Detections.candidates,
    # which only capture reads (frames the model is unsure about).
    min_score: float = Field(0.25, ge=0, le=1)
    candidate_min_score: float = Field(0.1, ge=0, le=1)
    # Hand tensors to Triton through system shared memory (/dev/shm) instead of gRPC: only when
    # Triton runs on the same host and shares /dev/shm (the embedded stack, one compose host).
    shared_memory: bool = False
