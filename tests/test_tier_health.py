"""When a tier is left and when it gets its cameras back (services/inference/health.py), on a
fake clock: the rules of docs/design/degradation.md §4.2."""

from __future__ import annotations

import numpy as np
import pytest

from services.inference.health import Health, State
from services.inference.tiers_file import HealthRules

BUDGET_S = 0.25
RULES = HealthRules(window_s=5, min_samples=10, unavailable_grace_s=1.0, queue_full_count=3,
                    hold_s=4, probe_every_s=0.5, probe_window=3, recover_ratio=0.8,
                    ramp_steps=(0.25, 0.5, 1.0), ramp_step_s=1.0)  # fmt: skip
CAMERAS = [f"cam-{i}" for i in range(200)]


def healthy(now: float = 0.0) -> Health:
    return Health(RULES, BUDGET_S, now)


def degraded(reason_latency_s: float = 1.0) -> Health:
    health = healthy()
    for k in range(RULES.min_samples):
        health.observe(k * 0.01, reason_latency_s, None)
    assert health.state is State.DEGRADED
    return health


def probe(health: Health, now: float, latency_s: float | None, fault=None):
    assert health.wants_probe(now)
    health.probe_started(now)
    return health.probe_done(now, latency_s, fault)


def test_p95_over_budget_in_a_window_leaves_the_tier_once_there_are_enough_samples():
    health = healthy()
    for k in range(RULES.min_samples - 1):
        assert health.observe(k * 0.1, 0.4, None) is None  # slow, but too few to judge
    change = health.observe(1.0, 0.4, None)
    assert change is not None and change.state is State.DEGRADED and change.reason == "latency"
    assert change.share == 0.0 and change.evidence["p95_ms"] == pytest.approx(400)
    assert not any(health.takes(camera) for camera in CAMERAS)


def test_requests_within_the_budget_keep_the_tier():
    health = healthy()
    for k in range(100):
        assert health.observe(k * 0.05, 0.2, None) is None
    assert health.state is State.HEALTHY


def test_timeouts_count_as_endless_latency():
    health = healthy()
    for k in range(RULES.min_samples - 2):
        health.observe(k * 0.1, 0.05, None)
    health.observe(2.0, None, "latency")
    change = health.observe(2.1, None, "latency")
    assert change is not None and change.reason == "latency"


def test_old_samples_leave_the_window():
    health = healthy()
    for k in range(RULES.min_samples - 1):
        health.observe(k * 0.01, 1.0, None)
    # Ten seconds later the slow ones are out of the 5 s window: one more slow is not enough.
    assert health.observe(10.0, 1.0, None) is None


@pytest.mark.parametrize(
    ("outage_s", "leaves"), [(0.5, False), (0.99, False), (1.0, True), (3.0, True)]
)
def test_unavailable_leaves_the_tier_only_after_the_grace(outage_s, leaves):
    health = healthy()
    health.observe(0.0, None, "unavailable")
    change = health.observe(outage_s, None, "unavailable")
    assert (change is not None and change.reason == "unavailable") is leaves


def test_a_success_restarts_the_grace():
    health = healthy()
    health.observe(0.0, None, "unavailable")
    health.observe(0.8, 0.02, None)
    assert health.observe(1.5, None, "unavailable") is None
    assert health.advance(2.0) is None
    assert health.advance(2.5).reason == "unavailable"  # with no traffic, time alone judges


def test_queue_full_errors_leave_the_tier_at_the_count():
    health = healthy()
    assert health.observe(0.0, None, "queue_full") is None
    assert health.observe(0.1, None, "queue_full") is None
    assert health.observe(0.2, None, "queue_full").reason == "queue_full"


def test_one_out_of_memory_leaves_the_tier_at_once():
    change = healthy().observe(0.0, None, "oom", "CUDA failure 2: out of memory")
    assert change.reason == "oom" and "out of memory" in change.detail


def test_return_needs_the_hold_then_good_probes_then_the_ramp():
    health = degraded()
    now = 0.1
    while now < RULES.hold_s:  # good probes during the hold do not end it early
        if health.wants_probe(now):
            assert probe(health, now, 0.05) is None
        now += 0.1
    assert health.state is State.DEGRADED
    change = probe(health, now + 0.5, 0.05)
    assert change.state is State.RAMPING and change.share == 0.25 and change.reason == "latency"
    ramped = [camera for camera in CAMERAS if health.takes(camera)]
    assert 0.1 < len(ramped) / len(CAMERAS) < 0.4
    assert health.advance(now + 1.0) is None  # a step lasts ramp_step_s
    change = health.advance(now + 1.6)
    assert change.share == 0.5
    assert all(health.takes(camera) for camera in ramped)  # those already back stay back
    change = health.advance(now + 2.7)
    assert change.state is State.HEALTHY and change.reason is None
    assert all(health.takes(camera) for camera in CAMERAS)


def test_a_probe_over_the_recover_ratio_starts_the_count_again():
    health = degraded()
    now = RULES.hold_s + 1
    probe(health, now, 0.05)
    probe(health, now + 0.5, 0.05)
    probe(health, now + 1.0, 0.8 * BUDGET_S + 0.01)  # within budget, not within the ratio
    assert probe(health, now + 1.5, 0.05) is None
    assert probe(health, now + 2.0, 0.05) is None
    assert probe(health, now + 2.5, 0.05).state is State.RAMPING


def test_one_probe_in_flight_at_a_time():
    health = degraded()
    health.probe_started(1.0)
    assert not health.wants_probe(5.0)
    health.probe_done(5.0, 0.05, None)
    assert health.wants_probe(5.5)


def test_the_reason_follows_the_probes():
    health = degraded()  # left because slow
    change = probe(health, 1.0, None, "unavailable")  # then stopped
    assert change.reason_changed and change.reason == "unavailable"
    assert probe(health, 1.5, None, "unavailable") is None  # once per change


def test_a_trip_while_ramping_doubles_the_hold():
    health = degraded()
    now = RULES.hold_s + 1
    for k in range(RULES.probe_window):
        probe(health, now + 0.5 * k, 0.05)
    assert health.state is State.RAMPING
    now += 3
    changes = [health.observe(now + k * 0.01, 1.0, None) for k in range(RULES.min_samples)]
    [trip] = [change for change in changes if change is not None]
    assert trip.state is State.DEGRADED and trip.evidence["hold_s"] == 2 * RULES.hold_s


def test_degraded_traffic_is_not_judged():
    health = degraded()
    assert health.observe(1.0, None, "oom") is None  # only probes reach it now


@pytest.mark.parametrize("seed", range(40))
def test_the_latency_rule_is_the_p95_of_the_window(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(RULES.min_samples, 300))
    latencies = rng.gamma(2.0, 0.04, n)  # around the budget's tail, often just over or under
    # min_samples = n: the rule first judges with the whole window in.
    health = Health(RULES.model_copy(update={"min_samples": n}), BUDGET_S, 0.0)
    changes = [
        health.observe(k * 1e-4, float(latency), None) for k, latency in enumerate(latencies)
    ]
    assert any(changes) == (np.percentile(latencies, 95, method="higher") > BUDGET_S)
