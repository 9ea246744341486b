"""What each model version's requests cost and how often they failed, per inference replica.

A replica counts every request it sends (serving, canary and shadow alike) by version and sends
the running totals with its heartbeat (services/rollout/state.py `report`). The rollout
controller takes the difference between two heartbeats as a window's figures, so no replica
needs to know about windows, and a restarted replica (totals back to 0) is noticed as such.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

# Upper edges of the latency buckets in ms; a last bucket counts everything slower.
EDGES_MS = (5, 10, 15, 20, 30, 40, 60, 80, 120, 160, 250, 400, 600, 1000, 2000, 5000)


@dataclass
class VersionUsage:
    ok: int = 0
    failed: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(EDGES_MS) + 1))

    @property
    def requests(self) -> int:
        return self.ok + self.failed

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.requests if self.requests else None

    def p95_ms(self) -> float | None:
        """The upper edge of the bucket holding the 95th percentile (the last: its lower
        edge, doubled): coarse, but the same for both versions compared."""
        total = sum(self.buckets)
        if not total:
            return None
        seen = 0
        for k, count in enumerate(self.buckets):
            seen += count
            if seen >= 0.95 * total:
                return float(EDGES_MS[k]) if k < len(EDGES_MS) else 2.0 * EDGES_MS[-1]
        return None  # unreachable: the loop ends at the total

    def plus(self, other: VersionUsage) -> VersionUsage:
        return VersionUsage(
            self.ok + other.ok,
            self.failed + other.failed,
            [a + b for a, b in zip(self.buckets, other.buckets, strict=True)],
        )

    def since(self, earlier: VersionUsage) -> VersionUsage:
        """What was counted after `earlier`; all of it when the totals went down (the replica
        restarted in between)."""
        deltas = [self.ok - earlier.ok, self.failed - earlier.failed] + [
            a - b for a, b in zip(self.buckets, earlier.buckets, strict=True)
        ]
        if min(deltas) < 0:
            return self
        return VersionUsage(deltas[0], deltas[1], deltas[2:])

    def to_json(self) -> list:
        return [self.ok, self.failed, self.buckets]

    @classmethod
    def from_json(cls, raw: object) -> VersionUsage:
        ok, failed, buckets = raw  # type: ignore[misc]  # validated by the caller's except
        if len(buckets) != len(EDGES_MS) + 1:
            raise ValueError(f"{len(buckets)} latency buckets, expected {len(EDGES_MS) + 1}")
        return cls(int(ok), int(failed), [int(b) for b in buckets])


Snapshot = dict[str, VersionUsage]  # version -> totals


class Usage:
    """A replica's running totals; requests run on several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: Snapshot = {}

    def observe(self, version: str, seconds: float, ok: bool, frames: int = 1) -> None:
        """One request of `frames` frames: each frame counts once; answered ones with the
        request's time (a failure's time is a timeout's, not the model's)."""
        with self._lock:
            usage = self._versions.setdefault(version, VersionUsage())
            if ok:
                usage.ok += frames
                usage.buckets[bisect.bisect_left(EDGES_MS, seconds * 1000.0)] += frames
            else:
                usage.failed += frames

    def snapshot(self) -> Snapshot:
        with self._lock:
            return {
                v: VersionUsage(u.ok, u.failed, list(u.buckets)) for v, u in self._versions.items()
            }


def between(earlier: dict[str, Snapshot], now: dict[str, Snapshot]) -> Snapshot:
    """Per version, summed over replicas: what `now` (replica -> totals) counted after
    `earlier`. A replica new since `earlier` counts whole; one gone since counts nothing."""
    total: Snapshot = {}
    for replica, versions in now.items():
        before = earlier.get(replica, {})
        for version, usage in versions.items():
            delta = usage.since(before.get(version, VersionUsage()))
            total[version] = total.get(version, VersionUsage()).plus(delta)
    return total
