"""Which cameras this ingest replica may publish: a lease per camera in Redis.

The consumer group decides which replica runs a camera, but only among replicas that still
heartbeat: one that stalls (a long pause, a network split) is dropped from the group while its
camera threads may still run. The lease fences that: `steadyeye:ingest:lease:<camera>` holds
the replica's id with a TTL, a replica renews what it holds every ttl/3 (WATCH/MULTI: no
script, which ingest's Redis user may not run), and every frame is published only while the
lease is held by this replica's own clock. A camera therefore runs on two replicas at once for
at most one TTL; a replica that stops cleanly releases the lease, so the next owner starts at
once; one that dies leaves it to expire (the group's session timeout is the longer wait).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from redis.client import Pipeline

log = logging.getLogger(__name__)


def lease_key(camera_id: str) -> str:
    return f"steadyeye:ingest:lease:{camera_id}"


class CameraLeases(threading.Thread):
    def __init__(self, client: redis.Redis, replica: str, ttl_s: float, stop: threading.Event):
        super().__init__(name="camera-leases", daemon=True)
        self._redis = client
        self.replica = replica
        self._ttl_ms = int(ttl_s * 1000)
        self._ttl_s = ttl_s
        self._stop = stop
        self._valid_until: dict[str, float] = {}  # our clock; a margin below the TTL
        self._lock = threading.Lock()

    def acquire(self, camera_id: str) -> bool:
        """Take the camera's lease if nobody holds it (or we do)."""
        key = lease_key(camera_id)
        started = time.monotonic()
        try:
            taken = self._redis.set(key, self.replica, nx=True, px=self._ttl_ms)
            if not taken and self._redis.get(key) != self.replica.encode():
                return False
        except redis.RedisError as exc:
            log.warning("camera %s: lease not taken, Redis unavailable: %s", camera_id, exc)
            return False
        self._held(camera_id, started)
        return True

    def holds(self, camera_id: str) -> bool:
        with self._lock:
            return time.monotonic() < self._valid_until.get(camera_id, 0.0)

    def release(self, camera_id: str) -> None:
        with self._lock:
            self._valid_until.pop(camera_id, None)
        try:
            self._if_ours(camera_id, lambda pipe, key: pipe.delete(key))
        except redis.RedisError as exc:  # it expires by itself
            log.warning("camera %s: lease not released: %s", camera_id, exc)

    def run(self) -> None:
        while not self._stop.wait(self._ttl_s / 3):
            with self._lock:
                held = list(self._valid_until)
            for camera_id in held:
                started = time.monotonic()
                try:
                    renewed = self._if_ours(
                        camera_id, lambda pipe, key: pipe.pexpire(key, self._ttl_ms)
                    )
                except redis.RedisError as exc:
                    log.warning("camera %s: lease not renewed: %s", camera_id, exc)
                    continue  # it stays valid until its time runs out
                if renewed:
                    self._held(camera_id, started)
                else:
                    log.error("camera %s: lease lost to another replica; it stops here", camera_id)
                    with self._lock:
                        self._valid_until.pop(camera_id, None)

    def _held(self, camera_id: str, asked_at: float) -> None:
        # Counted from when we asked, less a margin: Redis's TTL runs from when it answered.
        with self._lock:
            self._valid_until[camera_id] = asked_at + 0.8 * self._ttl_s

    def _if_ours(self, camera_id: str, change: Callable[[Pipeline, str], object]) -> bool:
        key = lease_key(camera_id)
        with self._redis.pipeline() as pipe:
            try:
                pipe.watch(key)
                if pipe.get(key) != self.replica.encode():
                    pipe.unwatch()
                    return False
                pipe.multi()
                change(pipe, key)
                pipe.execute()
                return True
            except redis.WatchError:
                return False
