"""Each camera's drift episode, from the monitor's events, in Redis: every replica (and a
restarted one) agrees whether a camera is drifting, whichever replica read the event."""

from __future__ import annotations

import json
from collections.abc import Collection

import redis

from services.capture.limits import PREFIX
from services.capture.strategies import Episode

TTL_S = 7 * 24 * 3600  # an ENDED that never comes cannot keep an episode open forever


class Episodes:
    def __init__(self, client: redis.Redis, prefix: str = PREFIX) -> None:
        self._redis = client
        self._prefix = prefix

    def _key(self, camera_id: str) -> str:
        return f"{self._prefix}:drift:{camera_id}"

    def load(self, cameras: Collection[str]) -> dict[str, tuple[Episode, bool] | None]:
        """Each camera's latest episode and whether it is open; None: none known."""
        cameras = list(cameras)
        if not cameras:
            return {}
        values = self._redis.mget([self._key(c) for c in cameras])
        return {c: _parse(v) for c, v in zip(cameras, values, strict=True)}

    def save(self, camera_id: str, episode: Episode, is_open: bool) -> None:
        value = {"event_id": episode.event_id, "start": episode.start_frame, "open": is_open}
        self._redis.set(self._key(camera_id), json.dumps(value), ex=TTL_S)


def _parse(raw: bytes | None) -> tuple[Episode, bool] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
        return Episode(str(value["event_id"]), int(value["start"])), bool(value["open"])
    except (ValueError, KeyError, TypeError):  # not ours, or an older format: as if none
        return None
