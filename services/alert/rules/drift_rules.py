"""The drift rule: the monitor service's drift episodes as alerts, one per episode, resolved
when the episode ends."""

from __future__ import annotations

from typing import Any

from .base import Evaluator
from .events import DriftObservation, Firing, SignalObs, alert_id
from .models import Defaults, Drift


class DriftEval(Evaluator):
    """Stateless: the monitor already sends one STARTED and one ENDED per episode, and both
    outputs' ids derive from the episode's event_id, so a replayed event gives the same id (which
    the alert service's dedupe drops). No cooldown: each episode is worth its alert."""

    rule: Drift

    def __init__(self, camera_id: str, rule: Drift, defaults: Defaults) -> None:
        super().__init__(camera_id, rule, defaults)
        self._signals = None if rule.signals is None else frozenset(rule.signals)

    def observe_drift(self, drift: DriftObservation) -> list[Firing]:
        episode = ("drift", drift.event_id)
        if not drift.started:
            # Whether the firing was ever published (the filter may have passed on it) is the
            # alert service's record, not ours: it sends a resolution only after its firing.
            return [
                self.fire(
                    (*episode, "resolved"),
                    track_ids=(),
                    first_seen=drift.capture_time,
                    last_seen=drift.capture_time,
                    frame_id=drift.frame_id,
                    message=f"drift episode from frame {drift.episode_start_frame_id} is over: "
                    f"{drift.note or 'every signal is back within its allowance'} "
                    f"({self.rule.id!r})",
                    resolves=alert_id(self.camera_id, self.rule.id, *episode),
                )
            ]
        if self._signals is not None and not any(s.name in self._signals for s in drift.signals):
            return []
        return [
            self.fire(
                episode,
                track_ids=(),
                first_seen=drift.capture_time,
                last_seen=drift.capture_time,
                frame_id=drift.frame_id,
                message=describe(drift, self.rule.id),
                resolvable=True,
            )
        ]

    def to_state(self) -> dict[str, Any]:
        return {}

    def load_state(self, data: dict[str, Any]) -> None:
        pass


def describe(drift: DriftObservation, rule_id: str) -> str:
    """Which signals moved and by how much, e.g. `brightness 31.2 vs reference 118.5
    (statistic 312.4 > threshold 95.12)`: the evidence an operator checks the snapshot against."""
    moved = ", ".join(_signal(s) for s in drift.signals) or "no signal named"
    also = f"; also moving: {', '.join(drift.also_moving)}" if drift.also_moving else ""
    return f"camera drifted from its reference: {moved}{also} ({rule_id!r})"


def _signal(s: SignalObs) -> str:
    return (
        f"{s.name} {s.value:.4g} vs reference {s.reference:.4g} "
        f"(statistic {s.statistic:.4g} > threshold {s.threshold:.4g})"
    )
