"""Which version serves a frame during a rollout (services/rollout/state.py): the choices every
inference replica makes alike, from the state alone."""

from __future__ import annotations

from services.rollout.state import RolloutState, in_share

CAMERAS = [f"cam-{k}" for k in range(2000)]


def test_shares_are_deterministic_about_right_and_consistent_as_they_grow():
    at_10 = {c for c in CAMERAS if in_share(c, 10)}
    at_30 = {c for c in CAMERAS if in_share(c, 30)}

    assert at_10 == {c for c in CAMERAS if in_share(c, 10)}
    assert 150 < len(at_10) < 250 and 500 < len(at_30) < 700
    assert at_10 <= at_30  # a camera in the canary stays in it as the share grows
    assert not any(in_share(c, 0) for c in CAMERAS)
    assert all(in_share(c, 100) for c in CAMERAS)


def test_canary_serves_its_cameras_with_the_candidate_and_compares_a_sample_of_their_frames():
    state = RolloutState(
        "m", "1", candidate="2", mode="canary", percent=30, compare_percent=20, state="running"
    )
    canary = {c for c in CAMERAS if in_share(c, 30)}
    compared = {(c, f) for c in CAMERAS for f in range(5) if state.shadow_version(c, f) == "1"}

    assert {c for c in CAMERAS if state.version_for(c) == "2"} == canary
    # The serving version answers a sample of the canary cameras' frames, to compare; no other.
    assert {c for c, _ in compared} <= canary
    assert 0.1 < len(compared) / (5 * len(canary)) < 0.3
    assert all(state.shadow_version(c, f) in (None, "1") for c in CAMERAS for f in range(5))
    assert state.in_use() == ["1", "2"]


def test_shadow_samples_frames_and_serves_every_camera_with_the_serving_version():
    state = RolloutState("m", "1", candidate="2", mode="shadow", percent=25, state="running")
    sampled = [f for f in range(400) if state.shadow_version("cam-1", f) == "2"]

    assert {state.version_for(c) for c in CAMERAS} == {"1"}
    assert 60 < len(sampled) < 140
    assert sampled == [f for f in range(400) if in_share(f"cam-1/{f}", 25)]


def test_an_ended_rollout_uses_only_the_serving_version():
    for ended in ("serving", "promoted", "aborted", "rolled_back"):
        state = RolloutState("m", "3", candidate="4", mode="canary", percent=100, state=ended)
        assert state.version_for("cam-1") == "3"
        assert state.shadow_version("cam-1", 0) is None
        assert state.in_use() == ["3"]
