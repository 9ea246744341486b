"""Each strategy's limits per minute, hour and day, per camera and overall, shared by every
replica: fixed-window counters in Redis, by the calendar window of the frame's capture time.

Taking a slot INCRements every counter the capture counts against and, when any went over its
limit, DECRements them all again. A counter is therefore over its limit only for the moment of a
refusal: replicas never capture more than a limit; two racing for the last slot may both back
off (a capture fewer, never one too many). No Lua: no service may run scripts (redis_acl).
"""

from __future__ import annotations

import redis

from services.capture.strategies import WINDOWS, Limits

PREFIX = "steadyeye:capture"
# A window's counter outlives it by the lateness a frame may have and still be captured: its
# pixels' TTL (STEADYEYE_CLAIM_CHECK_TTL_S, 120 s), with room.
LATE_S = 900

Counter = tuple[str, int, int, str]  # key, limit, TTL, "camera/minute"


class LimitCounters:
    def __init__(self, client: redis.Redis, prefix: str = PREFIX) -> None:
        self._redis = client
        self._prefix = prefix

    def _counters(
        self, strategy: str, limits: Limits, camera_id: str, capture_time: float
    ) -> list[Counter]:
        counters = []
        for scope, window in (("camera", limits.camera), ("overall", limits.overall)):
            for name, limit in window.items() if window is not None else ():
                seconds = WINDOWS[name]
                bucket = int(capture_time // seconds)
                # The camera id last: it may contain ':', the rest never does.
                who = f"camera:{camera_id}" if scope == "camera" else "overall"
                key = f"{self._prefix}:limit:{strategy}:{name}:{bucket}:{who}"
                counters.append((key, limit, seconds + LATE_S, f"{scope}/{name}"))
        return counters

    def full(
        self, strategy: str, limits: Limits, camera_id: str, capture_time: float
    ) -> str | None:
        """Which window is already at its limit (e.g. "camera/minute"), or None. A cheap look
        before the frame's pixels are read; take() decides."""
        counters = self._counters(strategy, limits, camera_id, capture_time)
        if not counters:
            return None
        values = self._redis.mget([key for key, *_ in counters])
        for (_, limit, _, window), value in zip(counters, values, strict=True):
            if value is not None and int(value) >= limit:
                return window
        return None

    def take(
        self, strategy: str, limits: Limits, camera_id: str, capture_time: float
    ) -> str | None:
        """Count one capture; None when it fits every limit, else the window it does not fit
        (and nothing is counted)."""
        counters = self._counters(strategy, limits, camera_id, capture_time)
        if not counters:
            return None
        with self._redis.pipeline(transaction=False) as pipe:
            for key, _, ttl, _ in counters:
                pipe.incr(key)
                pipe.expire(key, ttl)
            counts = pipe.execute()[::2]
        over = next((c[3] for c, n in zip(counters, counts, strict=True) if n > c[1]), None)
        if over is not None:
            self._decrement(counters)
        return over

    def give_back(self, strategy: str, limits: Limits, camera_id: str, capture_time: float) -> None:
        """Undo take() for a capture that failed after all."""
        self._decrement(self._counters(strategy, limits, camera_id, capture_time))

    def _decrement(self, counters: list[Counter]) -> None:
        with self._redis.pipeline(transaction=False) as pipe:
            for key, *_ in counters:
                pipe.decr(key)
            pipe.execute()
