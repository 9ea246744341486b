"""Near-duplicate suppression: a frame whose perceptual hash is close to one of its camera's
recent captures for the same reason is not captured again (a parked car at night, a redelivered
frame). The recent captures live in Redis per camera, so every replica compares with the same."""

from __future__ import annotations

import cv2
import imagehash
import numpy as np
import redis
from PIL import Image

from services.capture.limits import PREFIX

# A 16x16 DCT hash (256 bits): on the sample clip consecutive frames differ by 0-18 bits and
# frames 2 s apart by 32 or more; the 64-bit default put some of those within 6 bits.
HASH_SIZE = 16
HEX_CHARS = HASH_SIZE * HASH_SIZE // 4


def fingerprint(image: np.ndarray) -> int:
    """The perceptual hash of a BGR image, as a 256-bit integer."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return int(str(imagehash.phash(Image.fromarray(grey), hash_size=HASH_SIZE)), 16)


def distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class RecentCaptures:
    def __init__(
        self,
        client: redis.Redis,
        max_distance: int,
        keep: int,
        window_s: int,
        prefix: str = PREFIX,
    ) -> None:
        self._redis = client
        self._max_distance = max_distance
        self._keep = keep
        self._window_s = window_s
        self._prefix = prefix

    def _key(self, camera_id: str) -> str:
        return f"{self._prefix}:recent:{camera_id}"

    def duplicate(self, camera_id: str, reason: str, phash: int, when: float) -> int | None:
        """The distance to the closest capture of this camera and reason, among its last
        `keep` within `window_s` of `when` (capture times), if within the setting; else None."""
        closest = None
        for entry in self._redis.lrange(self._key(camera_id), 0, self._keep - 1):
            try:
                hex_hash, at, their_reason = entry.decode("ascii").split(" ", 2)
                apart = distance(phash, int(hex_hash, 16))
                late = abs(when - float(at))
            except ValueError:  # not an entry of ours: ignored rather than fail every capture
                continue
            if their_reason != reason or late > self._window_s:
                continue
            if apart <= self._max_distance and (closest is None or apart < closest):
                closest = apart
        return closest

    def remember(self, camera_id: str, reason: str, phash: int, when: float) -> None:
        key = self._key(camera_id)
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.lpush(key, f"{phash:0{HEX_CHARS}x} {when!r} {reason}")
            pipe.ltrim(key, 0, self._keep - 1)
            pipe.expire(key, self._window_s)
            pipe.execute()
