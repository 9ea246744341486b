"""Whether one tier may serve, judged by one inference replica from its own requests.

    HEALTHY --(p95 > budget | N x queue full | unreachable for the grace | OOM)--> DEGRADED
    DEGRADED --(held hold_s, last probe_window probes each <= recover_ratio x budget)--> RAMPING
    RAMPING --(one step per ramp_step_s, a growing share of cameras)--> HEALTHY
    RAMPING --(a trip)--> DEGRADED, hold doubled

Leaving is quick, returning is slow on purpose: a primary that is only just good again, given
every camera at once, trips again (docs/design/degradation.md §4.2). Each replica decides alone,
in memory: a Redis outage must not stop a failover, and a camera is one partition, so one
replica at a time. Not thread-safe: the Router holds the lock.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from services.inference.faults import TierFault
from services.inference.tiers_file import HealthRules
from services.rollout.state import in_share


class State(Enum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    RAMPING = "ramping"


@dataclass(frozen=True)
class Change:
    """A state change of one tier, for the serving event, the metrics and the log."""

    state: State
    reason: TierFault | None  # why the tier is left (None once it is back)
    share: float  # of cameras the tier takes after the change
    evidence: dict[str, float] = field(default_factory=dict)
    detail: str = ""
    reason_changed: bool = False  # still degraded, for another reason


@dataclass(frozen=True)
class _Outcome:
    at: float
    latency_s: float  # +inf for a timeout; nan for an error that says nothing of latency
    fault: TierFault | None


class Health:
    def __init__(self, rules: HealthRules, budget_s: float, now: float) -> None:
        self.rules = rules
        self.budget_s = budget_s
        self.state = State.HEALTHY
        self.reason: TierFault | None = None
        self.share = 1.0
        self._window: deque[_Outcome] = deque()
        self._counts: Counter[str] = Counter()
        self._failing_since: float | None = None  # first failure to reach it since a success
        self._since = now
        self._hold_s = rules.hold_s
        self._returned_at = -math.inf
        self._probes: deque[float] = deque(maxlen=rules.probe_window)  # latency, inf = bad
        self._probe_due = now
        self._probing = False
        self._ramp_step = 0
        self._ramp_due = now
        self.detail = ""

    # -- what the router asks --------------------------------------------------------------

    def takes(self, camera_id: str) -> bool:
        if self.state is State.HEALTHY:
            return True
        if self.state is State.DEGRADED:
            return False
        return in_share(f"tier-ramp:{camera_id}", self.share * 100)

    def wants_probe(self, now: float) -> bool:
        return self.state is State.DEGRADED and not self._probing and now >= self._probe_due

    # -- what it is told -------------------------------------------------------------------

    def observe(self, now: float, latency_s: float | None, fault: TierFault | None,
                detail: str = "") -> Change | None:  # fmt: skip
        """A served request's latency, or its fault (a timeout is fault "latency")."""
        if fault is None:
            self._failing_since = None
        elif fault == "unavailable":
            self._failing_since = self._failing_since if self._failing_since is not None else now
        if detail:
            self.detail = detail[:200]
        if self.state is State.DEGRADED:
            return None  # nothing of ours runs there but probes
        latency = math.inf if fault == "latency" else (latency_s if fault is None else math.nan)
        outcome = _Outcome(now, latency, fault)  # type: ignore[arg-type]
        self._window.append(outcome)
        self._count(outcome, +1)
        return self._judge(now)

    def probe_started(self, now: float) -> None:
        self._probing = True
        self._probe_due = now + self.rules.probe_every_s

    def probe_done(self, now: float, latency_s: float | None, fault: TierFault | None,
                   detail: str = "") -> Change | None:  # fmt: skip
        """A probe's outcome: each good one counts towards the return, a bad one starts over."""
        self._probing = False
        if self.state is not State.DEGRADED:
            return None
        good = fault is None and latency_s is not None
        good = good and latency_s <= self.rules.recover_ratio * self.budget_s  # type: ignore[operator]
        self._probes.append(latency_s if good else math.inf)  # type: ignore[arg-type]
        # Why we are still away follows the probes: slow, then stopped, says "unavailable".
        now_reason: TierFault | None = fault
        if fault is None and not good:
            now_reason = "latency"
        if now_reason is not None and now_reason != self.reason:
            self.reason = now_reason
            self.detail = detail[:200] if detail else self.detail
            return self._change(reason_changed=True)
        held = now - self._since >= self._hold_s
        window = self._probes
        if held and len(window) == window.maxlen and all(math.isfinite(p) for p in window):
            self.state, self.share, self._ramp_step = State.RAMPING, self.rules.ramp_steps[0], 0
            self._ramp_due = now + self.rules.ramp_step_s
            self._clear_window()
            return self._finish_ramp_step(now)
        return None

    def advance(self, now: float) -> Change | None:
        """Time passing: the ramp's next step, the unavailable grace with no traffic."""
        if self.state is State.RAMPING and now >= self._ramp_due:
            self._ramp_step += 1
            self.share = self.rules.ramp_steps[self._ramp_step]
            self._ramp_due = now + self.rules.ramp_step_s
            return self._finish_ramp_step(now)
        if self.state is not State.DEGRADED:
            return self._judge(now)
        return None

    # -- the rules -------------------------------------------------------------------------

    def _finish_ramp_step(self, now: float) -> Change:
        if self.share >= 1.0:
            self.state, self.reason, self._returned_at = State.HEALTHY, None, now
        return self._change()

    def _count(self, outcome: _Outcome, sign: int) -> None:
        """Running counts of the window, so judging a request costs O(1), not a sort."""
        counts = self._counts
        if not math.isnan(outcome.latency_s):
            counts["samples"] += sign
            counts["over"] += sign * (outcome.latency_s > self.budget_s)
        if outcome.fault is not None:
            counts["errors"] += sign
            counts[outcome.fault] += sign

    def _judge(self, now: float) -> Change | None:
        rules, counts = self.rules, self._counts
        while self._window and self._window[0].at < now - rules.window_s:
            self._count(self._window.popleft(), -1)
        samples = counts["samples"]
        # The p95 (numpy's "higher": the sample at ceil(0.95 (n-1)) in order) is over the
        # budget exactly when at least n - that index samples are.
        p95_over = samples >= rules.min_samples and counts["over"] >= samples - math.ceil(
            0.95 * (samples - 1)
        )
        reason: TierFault | None = None
        if counts["oom"]:
            reason = "oom"
        elif counts["queue_full"] >= rules.queue_full_count:
            reason = "queue_full"
        elif self._failing_since is not None and now - self._failing_since >= (
            rules.unavailable_grace_s
        ):
            reason = "unavailable"
        elif p95_over:
            reason = "latency"
        if reason is None:
            return None
        latencies = [o.latency_s for o in self._window if not math.isnan(o.latency_s)]
        p95 = float(np.percentile(latencies, 95, method="higher")) if latencies else 0.0
        evidence = {"window_s": rules.window_s, "samples": float(samples),
                    "p95_ms": min(p95 * 1000, 1e9), "budget_ms": self.budget_s * 1000,
                    "errors": float(counts["errors"])}  # fmt: skip
        return self._leave(now, reason, evidence)

    def _clear_window(self) -> None:
        self._window.clear()
        self._counts = Counter()

    def _leave(self, now: float, reason: TierFault, evidence: dict[str, float]) -> Change:
        if self.state is State.RAMPING or now - self._returned_at < self.rules.retrip_s:
            self._hold_s = min(2 * self._hold_s, self.rules.max_hold_s)  # it came back too soon
        else:
            self._hold_s = self.rules.hold_s
        self.state, self.reason, self.share, self._since = State.DEGRADED, reason, 0.0, now
        self._clear_window()
        self._probes.clear()
        self._probe_due = now + self.rules.probe_every_s
        return self._change(evidence)

    def _change(self, evidence: dict[str, float] | None = None,
                reason_changed: bool = False) -> Change:  # fmt: skip
        figures = dict(evidence or {})
        figures["hold_s"] = self._hold_s
        finite = [p for p in self._probes if math.isfinite(p)]
        if finite:
            figures["probes_ok"] = float(len(finite))
            figures["probe_p95_ms"] = float(np.percentile(finite, 95)) * 1000
        return Change(self.state, self.reason, self.share, figures, self.detail, reason_changed)
