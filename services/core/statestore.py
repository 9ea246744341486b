"""Per-key state snapshots in Redis, so a key's state follows its partition to another replica."""

from __future__ import annotations

import json
from typing import Any

import redis

from services.core.errors import TransientError


class StateStore:
    def __init__(self, client: redis.Redis, namespace: str, ttl_s: int = 7 * 24 * 3600) -> None:
        self._redis = client
        self._namespace = namespace
        self._ttl = ttl_s  # forgotten cameras do not accumulate forever

    def _key(self, key: str) -> str:
        return f"steadyeye:state:{self._namespace}:{key}"

    def load(self, key: str) -> dict[str, Any] | None:
        try:
            raw = self._redis.get(self._key(key))
        except redis.RedisError as exc:
            raise TransientError(
                f"redis unavailable loading {self._namespace} state: {exc}"
            ) from exc
        return None if raw is None else json.loads(raw)

    def save_many(self, states: dict[str, dict[str, Any]]) -> None:
        if not states:
            return
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for key, state in states.items():
                    pipe.set(self._key(key), json.dumps(state, separators=(",", ":")), ex=self._ttl)
                pipe.execute()
        except redis.RedisError as exc:
            raise TransientError(
                f"redis unavailable saving {self._namespace} state: {exc}"
            ) from exc
