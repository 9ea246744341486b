"""Which tier answers a camera's frames now, and what is said when that changes: a serving
event (steadyeye.serving.v1), metrics and a log line per switch. One Health per tier that has a
tier after it; the last tier is never left (it retries, rewinds and waits, as one tier does)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter, Gauge

from services.core.health import Health as ServiceHealth
from services.core.runtime import replica_id
from services.inference.faults import TierFault
from services.inference.health import Change, Health, State
from services.inference.tiers import Tier
from services.inference.tiers_file import HealthRules
from steadyeye.v1.detections_pb2 import DegradedReason
from steadyeye.v1.serving_pb2 import ServingEvent, ServingStep

log = logging.getLogger(__name__)

REASONS: dict[TierFault, DegradedReason.ValueType] = {
    "latency": DegradedReason.DEGRADED_REASON_LATENCY,
    "unavailable": DegradedReason.DEGRADED_REASON_UNAVAILABLE,
    "queue_full": DegradedReason.DEGRADED_REASON_QUEUE_FULL,
    "oom": DegradedReason.DEGRADED_REASON_OUT_OF_MEMORY,
}
# The label and metric names of a reason (DegradedReason without its prefix, lower case).
REASON_LABELS: dict[TierFault, str] = {
    fault: DegradedReason.Name(value).removeprefix("DEGRADED_REASON_").lower()
    for fault, value in REASONS.items()
}

tier_degraded = Gauge(
    "steadyeye_inference_tier_degraded",
    "1 while this replica sends no frame to the tier (only probes)",
    ["tier"],
)
primary_share = Gauge(
    "steadyeye_inference_primary_share", "Share of this replica's cameras on the primary tier"
)
tier_switches = Counter(
    "steadyeye_inference_tier_switches_total",
    "Tier switches of this replica (each is a ServingEvent on steadyeye.serving.v1)",
    ["from_tier", "to_tier", "reason"],
)
tier_probes = Counter(
    "steadyeye_inference_tier_probes_total",
    "Probe requests to a tier that was left (never published), by outcome",
    ["tier", "outcome"],
)


class Router:
    def __init__(self, tiers: list[Tier], rules: HealthRules, model: str,
                 health: ServiceHealth | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        """health: where /readyz notes a tier that was left (still ready: a tier serves)."""
        self.tiers = tiers
        self._service_health = health
        self._clock = clock
        self._health = [Health(rules, tier.budget_s, clock()) for tier in tiers[:-1]]
        self._lock = threading.Lock()
        self._model = model
        self._replica = replica_id()
        self._sequence = 0
        self._events: list[ServingEvent] = []
        if self._health:
            primary_share.set(1.0)
            for tier in tiers[:-1]:
                tier_degraded.labels(tier.name).set(0)

    @property
    def last(self) -> int:
        return len(self.tiers) - 1

    def tier_for(self, camera_id: str) -> int:
        with self._lock:
            return next(
                (i for i, health in enumerate(self._health) if health.takes(camera_id)), self.last
            )

    def left_because(self, tier: int) -> TierFault | None:
        """Why the frames of a camera routed past `tier` are not on the primary."""
        with self._lock:
            return self._health[0].reason if self._health and tier > 0 else None

    def observe(self, tier: int, latency_s: float | None, fault: TierFault | None,
                detail: str = "") -> None:  # fmt: skip
        if tier < len(self._health):
            with self._lock:
                self._note(tier, self._health[tier].observe(self._clock(), latency_s, fault,
                                                            detail))  # fmt: skip

    def probes_due(self) -> list[int]:
        """The tiers to probe now; each is marked as probing until `probe_done`."""
        with self._lock:
            now, due = self._clock(), []
            for i, health in enumerate(self._health):
                self._note(i, health.advance(now))
                if health.wants_probe(now):
                    health.probe_started(now)
                    due.append(i)
            return due

    def probe_done(self, tier: int, latency_s: float | None, fault: TierFault | None,
                   detail: str = "") -> None:  # fmt: skip
        health = self._health[tier]
        within = fault is None and latency_s is not None and latency_s <= health.budget_s
        outcome = "failed" if fault else "ok" if within else "over_budget"
        tier_probes.labels(self.tiers[tier].name, outcome).inc()
        with self._lock:
            self._note(tier, health.probe_done(self._clock(), latency_s, fault, detail))

    def events(self) -> list[ServingEvent]:
        with self._lock:
            events, self._events = self._events, []
            return events

    def _note(self, i: int, change: Change | None) -> None:
        if change is None:
            return
        left, next_tier = self.tiers[i].name, self.tiers[i + 1].name
        if change.state is State.DEGRADED:
            step = (ServingStep.SERVING_STEP_REASON_CHANGED if change.reason_changed
                    else ServingStep.SERVING_STEP_DEGRADED)  # fmt: skip
            source, target = left, next_tier
        else:
            step = (ServingStep.SERVING_STEP_RECOVERED if change.state is State.HEALTHY
                    else ServingStep.SERVING_STEP_RAMPING)  # fmt: skip
            source, target = next_tier, left
        reason = REASON_LABELS[change.reason] if change.reason else ""
        if step != ServingStep.SERVING_STEP_REASON_CHANGED:
            tier_switches.labels(source, target, reason).inc()
        tier_degraded.labels(left).set(1 if change.state is State.DEGRADED else 0)
        if self._service_health is not None:
            note = f"tier {left}"
            if change.state is State.HEALTHY:
                self._service_health.clear_note(note)
            else:
                self._service_health.note(note, f"left for {next_tier} ({reason}); "
                                          f"{change.share:.0%} of cameras on it")  # fmt: skip
        if i == 0:
            primary_share.set(change.share)
        self._sequence += 1
        time_now = Timestamp()
        time_now.GetCurrentTime()
        event = ServingEvent(
            event_id=f"{self._replica}-{self._sequence}",
            model=self._model,
            replica=self._replica,
            step=step,
            from_tier=source,
            to_tier=target,
            reason=REASONS[change.reason] if change.reason else 0,
            time=time_now,
            primary_share=self._health[0].share,
            evidence=change.evidence,
            detail=change.detail,
        )
        log.warning("%s: %s -> %s (%s, share %.2f) %s", ServingStep.Name(step), source, target,
                    reason or "back", change.share, dict(change.evidence))  # fmt: skip
        self._events.append(event)
