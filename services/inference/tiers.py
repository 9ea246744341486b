"""The tiers inference answers frames with, connected: a client, the model, its budget and its
shared-memory regions each. Without a tiers file there is one tier, today's TRITON_URL and
MODEL_NAME, with no name: nothing degrades and Detections says nothing of tiers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import tritonclient.grpc as triton

from services import contract, triton_client
from services.contract import ModelContract
from services.core.errors import ConfigError
from services.inference.settings import InferenceSettings
from services.inference.shm import SharedMemoryInputs
from services.inference.tiers_file import HealthRules, TierSpec, load_tiers
from services.inference.versions import highest_ready


@dataclass
class Tier:
    name: str  # "" when there is no tiers file
    model: str
    client: triton.InferenceServerClient
    timeout_s: float
    budget_s: float
    shm: SharedMemoryInputs | None = None
    version: str | None = None  # a fallback's: the highest Triton serves, asked once

    def version_served(self) -> str:
        if self.version is None:
            self.version = highest_ready(self.client, self.model)
        return self.version

    def close(self) -> None:
        if self.shm is not None:
            self.shm.close()
        self.client.close()


def connect_tiers(settings: InferenceSettings) -> tuple[list[Tier], ModelContract, HealthRules]:
    """Each tier's client once its model is ready, and the primary's contract, which every tier
    must share: preprocess letterboxes once, for one input size, padding and class list."""
    if settings.tiers_file is None:
        client = triton_client.connect(settings.triton_url)
        model = contract.fetch(client, settings.model_name, settings.model_wait_s)
        timeout = settings.request_timeout_s
        return [Tier("", model.name, client, timeout, timeout)], model, HealthRules()
    parsed = load_tiers(settings.tiers_file)
    tiers, contracts = [], []
    for spec in parsed.tiers:
        client = triton_client.connect(spec.triton_url)
        contracts.append(contract.fetch(client, spec.model, settings.model_wait_s))
        tiers.append(Tier(spec.name, spec.model, client, spec.timeout_s, spec.budget_s))
    for spec, found in zip(parsed.tiers[1:], contracts[1:], strict=True):
        _same_contract(parsed.tiers[0], contracts[0], spec, found)
    return tiers, contracts[0], parsed.health


def _same_contract(
    primary: TierSpec, wanted: ModelContract, spec: TierSpec, found: ModelContract
) -> None:
    ignored = {"name": wanted.name, "max_batch_size": wanted.max_batch_size}
    if dataclasses.replace(found, **ignored) == wanted:
        return
    differs = [
        f"{field.name} {getattr(found, field.name)!r} (primary: {getattr(wanted, field.name)!r})"
        for field in dataclasses.fields(ModelContract)
        if field.name not in ignored and getattr(found, field.name) != getattr(wanted, field.name)
    ]
    raise ConfigError(
        f"tier {spec.name!r} ({spec.model} at {spec.triton_url}) does not take the frames tier "
        f"{primary.name!r} takes: {'; '.join(differs)}"
    )
