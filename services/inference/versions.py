"""Which model version each request names: the rollout state in Redis, cached and refreshed
about once a second (the handler's tick). Every request names its version: once a candidate is
loaded, Triton answers unversioned requests with it (docs/design/model-rollout.md §2)."""

from __future__ import annotations

import logging

import redis
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from services.core.runtime import replica_id
from services.rollout import state as rollout
from services.rollout.state import RolloutState
from services.rollout.usage import Usage

log = logging.getLogger(__name__)


def highest_ready(client: triton.InferenceServerClient, model: str) -> str:
    """The highest version Triton serves: the default while no rollout state exists."""
    versions = client.get_model_metadata(model).versions
    return max(versions, key=int) if versions else "1"


def version_for(
    redis_client: redis.Redis, client: triton.InferenceServerClient, model: str, camera_id: str
) -> str:
    """The version serving this camera now, for a one-off client (an operator's command)."""
    found = rollout.load(redis_client, model)
    return found.version_for(camera_id) if found else highest_ready(client, model)


class Versions:
    def __init__(
        self, redis_client: redis.Redis, client: triton.InferenceServerClient, model: str
    ) -> None:
        self._redis = redis_client
        self._client = client
        self._model = model
        self.replica = replica_id()
        self.state = RolloutState(model, highest_ready(client, model))
        self.usage = Usage()
        self.refresh()

    def refresh(self) -> None:
        """Read the state, then report what this replica uses from now on. Errors keep the
        cached state: a Redis outage must not stop serving."""
        try:
            found = rollout.load(self._redis, self._model)
            if found is None:
                found = RolloutState(self._model, highest_ready(self._client, self._model))
            if found != self.state:
                log.info("rollout state of %s: %s", self._model, found)
            self.state = found
            rollout.report(
                self._redis, self._model, self.replica, self.state.in_use(), self.usage.snapshot()
            )
        except (redis.RedisError, InferenceServerException, ValueError, TypeError) as exc:
            log.warning("rollout state of %s not refreshed: %s", self._model, exc)
