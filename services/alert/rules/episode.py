"""The one timing rule behind every alert: a condition that must hold for a while, with grace.

An episode starts on the first observation where the condition holds, fires once when it has
held for `for_s` (and the rule's cooldown since its last firing has passed), and ends only
after the condition has been false for `clear_s`: a one-frame dropout neither restarts the
clock nor lets the same episode fire twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Capture times are floats (frame 20 at 10 fps may read 1.9999999999999998 s after frame 0):
# a held-for-2-s check should not slip a frame because of the last bit.
EPS = 1e-6


@dataclass(slots=True)
class Timing:
    for_s: float
    clear_s: float
    cooldown_s: float


@dataclass(slots=True)
class Episode:
    start_t: float | None = None  # None: no episode in progress
    start_frame: int = -1
    false_since: float | None = None  # when the condition last turned false (grace running)
    fired: bool = False
    last_fire_t: float | None = None  # survives episodes: the cooldown spans them

    @property
    def active(self) -> bool:
        return self.start_t is not None

    def update(self, holds: bool, t: float, frame_id: int, timing: Timing) -> bool:
        """Advance by one observation; True when the episode fires on it."""
        if not holds:
            if self.start_t is not None:
                if self.false_since is None:
                    self.false_since = t
                if t - self.false_since >= timing.clear_s - EPS:
                    self.start_t, self.false_since, self.fired = None, None, False
            return False
        self.false_since = None
        if self.start_t is None:
            self.start_t, self.start_frame, self.fired = t, frame_id, False
        if self.fired or t - self.start_t < timing.for_s - EPS:
            return False
        if self.last_fire_t is not None and t - self.last_fire_t < timing.cooldown_s - EPS:
            return False
        self.fired, self.last_fire_t = True, t
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_t": self.start_t,
            "start_frame": self.start_frame,
            "false_since": self.false_since,
            "fired": self.fired,
            "last_fire_t": self.last_fire_t,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Episode:
        return cls(
            start_t=_opt_float(data["start_t"]),
            start_frame=int(data["start_frame"]),
            false_since=_opt_float(data["false_since"]),
            fired=bool(data["fired"]),
            last_fire_t=_opt_float(data["last_fire_t"]),
        )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
