"""What every rule evaluator shares: its resolved settings and how it builds a firing."""

from __future__ import annotations

from typing import Any

from .events import Counts, DriftObservation, Firing, FrameObservation, TrackObs, alert_id
from .models import Defaults, RuleBase

# Per-track state of a track unseen this long is dropped. The tracker never reuses an id and
# ends a track after its buffer (a few seconds), so this only bounds memory and snapshot size.
TRACK_TTL_S = 60.0


class Evaluator:
    """One rule of one camera with its state. Subclasses override what they need."""

    def __init__(self, camera_id: str, rule: RuleBase, defaults: Defaults) -> None:
        self.camera_id = camera_id
        self.rule = rule
        self.severity: str = rule.severity or defaults.severity
        self.cooldown_s: float = defaults.cooldown_s if rule.cooldown_s is None else rule.cooldown_s
        classes: tuple[str, ...] | None = getattr(rule, "classes", None)
        self._classes = None if classes is None else frozenset(classes)

    @property
    def rule_type(self) -> str:
        return str(getattr(self.rule, "type", ""))

    def wants(self, class_name: str) -> bool:
        return self._classes is None or class_name in self._classes

    def observe(self, obs: FrameObservation) -> list[Firing]:
        return []

    def check_silence(self, last_seen: float, now: float, frame_id: int) -> list[Firing]:
        return []

    def observe_drift(self, drift: DriftObservation) -> list[Firing]:
        return []

    def to_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state(self, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def fire(
        self,
        episode: tuple[str | int | float, ...],
        *,
        track_ids: tuple[int, ...],
        first_seen: float,
        last_seen: float,
        frame_id: int,
        message: str,
        counts: Counts | None = None,
        resolvable: bool = False,
        resolves: str = "",
    ) -> Firing:
        return Firing(
            alert_id=alert_id(self.camera_id, self.rule.id, *episode),
            rule_id=self.rule.id,
            rule_type=self.rule_type,
            severity=self.severity,
            camera_id=self.camera_id,
            track_ids=track_ids,
            first_seen=first_seen,
            last_seen=last_seen,
            frame_id=frame_id,
            message=message,
            counts=counts,
            resolvable=resolvable,
            resolves=resolves,
        )


def latest_tracks(obs: FrameObservation) -> dict[int, TrackObs]:
    """track id -> TrackObs; should a frame list an id twice, the last entry wins."""
    return {track.track_id: track for track in obs.tracks}
