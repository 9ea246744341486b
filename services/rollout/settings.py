from pathlib import Path

from pydantic import Field

from services.core.settings import ServiceSettings, group


class RolloutSettings(ServiceSettings):
    """The rollout controller, and `steadyeye rollout` (which reads the same settings)."""

    model_config = group("ROLLOUT")

    triton_url: str = "127.0.0.1:8001"
    model_name: str = "yolox_nano"
    # The Triton model repository on disk (the embedded stack's; `model import`'s default). On
    # Kubernetes, the volume the Triton pods copy their repository from.
    repository: Path = Path("model_repository")
    # How long a step waits for Triton and for every inference replica.
    wait_s: float = Field(60.0, gt=0)
    # The gates (examples/validate-policy.yaml, section `rollout` and those it reuses); none:
    # the built-in defaults.
    policy: Path | None = None
    # Frames whose other version's answer has not come yet, kept at most.
    max_waiting_frames: int = Field(20_000, ge=100)
    # On Kubernetes: Triton replicas from this Service's EndpointSlices, and one controller
    # acting at a time through a Lease. Empty namespace: not on Kubernetes (one Triton at
    # triton_url sharing `repository`).
    kube_namespace: str = ""
    triton_service: str = ""
    triton_port_name: str = "grpc"
    lease_name: str = "steadyeye-rollout-controller"
    lease_duration_s: float = Field(15.0, gt=1)
