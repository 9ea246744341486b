"""The rollout controller's judgement of one window of live evidence against the policy.

Pass gates are the validation gate's (`agreement`, `latency.max_p95_ratio`) plus the live ones
(`rollout.max_error_rate`, `rollout.max_drift_events`); a window passes when every gate holds.
Hard gates (`rollout.hard_*`) are judged as soon as there is enough evidence for them, and one
breach rolls back: a candidate that far off will not get better with more frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.rollout.agreement import Agreement
from services.rollout.policy import Policy
from services.rollout.usage import VersionUsage


@dataclass
class Evidence:
    """One window: the compared frames' agreement (serving = reference) and requests."""

    agreement: Agreement
    serving: VersionUsage
    candidate: VersionUsage
    drift_events: int = 0
    class_names: Mapping[int, str] = field(default_factory=dict)

    @property
    def p95_ratio(self) -> float | None:
        serving, candidate = self.serving.p95_ms(), self.candidate.p95_ms()
        return None if serving is None or candidate is None else candidate / serving

    def figures(self) -> dict[str, float]:
        """What RolloutEvent.evidence carries: the figures there are (None ones left out)."""
        a = self.agreement
        values = {
            "frames": a.frames,
            "reference_boxes": a.boxes.ref_sure,
            "box_f1": a.boxes.f1,
            "class_f1": a.classes.f1,
            "detections_ratio": a.detections_ratio,
            "candidate_requests": self.candidate.requests,
            "error_rate": self.candidate.error_rate,
            "serving_p95_ms": self.serving.p95_ms(),
            "candidate_p95_ms": self.candidate.p95_ms(),
            "p95_ratio": self.p95_ratio,
            "drift_events": self.drift_events,
        }
        return {k: round(float(v), 4) for k, v in values.items() if v is not None}


@dataclass
class Verdict:
    breaches: list[str]  # hard gates broken: roll back now
    failed: list[str]  # pass gates not holding (judged only on a full window)
    complete: bool  # the window has its frames and enough sure reference boxes

    @property
    def passed(self) -> bool:
        return self.complete and not self.failed and not self.breaches


def judge(evidence: Evidence, policy: Policy) -> Verdict:
    r, g = policy.rollout, policy.agreement
    a = evidence.agreement
    breaches: list[str] = []
    if a.frames >= r.hard_after_frames and a.boxes.ref_sure >= r.hard_min_reference_boxes:
        breaches += _below("box_f1", a.boxes.f1, r.hard_min_box_f1)
        breaches += _below("class_f1", a.classes.f1, r.hard_min_class_f1)
        breaches += _outside("detections_ratio", a.detections_ratio, r.hard_detections_ratio)
    if evidence.candidate.requests >= r.hard_after_frames:
        breaches += _above("error_rate", evidence.candidate.error_rate, r.hard_error_rate)
    if min(evidence.candidate.ok, evidence.serving.ok) >= r.hard_after_frames:
        breaches += _above("p95_ratio", evidence.p95_ratio, r.hard_p95_ratio)

    complete = a.frames >= r.window_frames and a.boxes.ref_sure >= g.min_reference_boxes
    failed: list[str] = []
    if complete:
        failed += _below("box_f1", a.boxes.f1, g.min_box_f1)
        failed += _below("class_f1", a.classes.f1, g.min_class_f1)
        failed += _outside("detections_ratio", a.detections_ratio, g.detections_ratio)
        for k, tally in sorted(a.per_class.items()):
            if tally.ref_sure >= g.min_class_support:
                name = evidence.class_names.get(k, str(k))
                failed += _below(f"class_f1[{name}]", tally.f1, g.min_per_class_f1)
        failed += _above("error_rate", evidence.candidate.error_rate, r.max_error_rate)
        failed += _above("p95_ratio", evidence.p95_ratio, policy.latency.max_p95_ratio)
        failed += _above("drift_events", evidence.drift_events, r.max_drift_events)
    return Verdict(breaches, failed, complete)


def _below(name: str, value: float | None, limit: float) -> list[str]:
    return [f"{name} {_fmt(value)} < {limit:g}"] if value is None or value < limit else []


def _above(name: str, value: float | None, limit: float | None) -> list[str]:
    """A figure there is no evidence for (None) holds: requests or latencies not yet seen."""
    if limit is None or value is None or value <= limit:
        return []
    return [f"{name} {_fmt(value)} > {limit:g}"]


def _outside(name: str, value: float | None, bounds: tuple[float, float]) -> list[str]:
    low, high = bounds
    if value is not None and low <= value <= high:
        return []
    return [f"{name} {_fmt(value)} outside [{low:g}, {high:g}]"]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
