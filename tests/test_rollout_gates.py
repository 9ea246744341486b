"""How the rollout controller judges a window (services/rollout/gates.py) and keeps it
(services/rollout/window.py, services/rollout/usage.py): specified on made-up detections."""

from __future__ import annotations

import numpy as np
import pytest

from services.rollout.agreement import Agreement, FrameDetections, compare
from services.rollout.gates import Evidence, judge
from services.rollout.policy import parse_policy
from services.rollout.usage import EDGES_MS, Usage, VersionUsage, between
from services.rollout.window import Pairs, Window
from steadyeye.v1.detections_pb2 import Detections

POLICY = parse_policy({"rollout": {"window_frames": 40, "hard_after_frames": 10}})
RNG = np.random.default_rng(7)


def scene(n: int = 6) -> FrameDetections:
    """n sure boxes, classes 0 and 2 alternating, well apart."""
    x = np.arange(n, dtype=np.float32) * 60
    boxes = np.stack([x, x * 0 + 10, x + 40, x * 0 + 90], axis=1)
    return FrameDetections(boxes, np.full(n, 0.8, np.float32), np.arange(n) % 2 * 2)


def same(f: FrameDetections) -> FrameDetections:
    jitter = RNG.normal(0, 1, f.boxes.shape).astype(np.float32)
    return FrameDetections(f.boxes + jitter, f.scores - 0.05, f.classes)


def nothing(f: FrameDetections) -> FrameDetections:
    return f.subset(np.zeros(len(f.scores), bool))


def swapped(f: FrameDetections) -> FrameDetections:
    return FrameDetections(f.boxes, f.scores, 2 - f.classes)


def half(f: FrameDetections) -> FrameDetections:
    return f.subset(np.arange(len(f.scores)) % 2 == 0)


def agreement(candidate, frames: int) -> Agreement:
    pairs = [(ref, candidate(ref)) for ref in [scene() for _ in range(frames)]]
    return compare(pairs, iou=0.5, serve=0.25, margin=0.15)


def usage(ok: int, failed: int = 0, ms: float = 12.0) -> VersionUsage:
    u = Usage()
    for _ in range(ok):
        u.observe("v", ms / 1000, ok=True)
    for _ in range(failed):
        u.observe("v", 0.0, ok=False)
    return u.snapshot().get("v", VersionUsage())


@pytest.mark.parametrize(
    ("case", "candidate", "frames", "candidate_usage", "breaches", "failed", "passed"),
    [
        ("the same detector, a full window", same, 40, usage(40), [], [], True),
        ("too few frames yet", same, 39, usage(39), [], [], False),
        ("finds nothing (input ÷255)", nothing, 10, usage(10),
         ["box_f1", "class_f1", "detections_ratio"], [], False),
        ("classes swapped: boxes agree", swapped, 10, usage(10), ["class_f1"], [], False),
        ("half the objects: soft fails only", half, 40, usage(40), [],
         ["box_f1", "class_f1", "detections_ratio"], False),
        ("every request fails, no frame compared", same, 0, usage(0, failed=12),
         ["error_rate"], [], False),
        ("2% errors: over the soft limit", same, 40, usage(49, failed=1), [], ["error_rate"],
         False),
        ("twice as slow: soft", same, 40, usage(40, ms=25), [], ["p95_ratio"], False),
        ("five times as slow: hard", same, 40, usage(40, ms=60), ["p95_ratio"], ["p95_ratio"],
         False),
    ],
)  # fmt: skip
def test_a_window_is_judged_on_every_gate(
    case, candidate, frames, candidate_usage, breaches, failed, passed
):
    evidence = Evidence(agreement(candidate, frames), usage(frames, ms=12), candidate_usage)

    verdict = judge(evidence, POLICY)

    assert [b.split()[0] for b in verdict.breaches] == breaches, case
    assert [f.split()[0] for f in verdict.failed if not f.startswith("class_f1[")] == failed, case
    assert verdict.passed is passed, case


def test_a_class_the_reference_is_sure_of_often_enough_is_gated_on_its_own():
    def second_class_lost(f: FrameDetections) -> FrameDetections:
        return f.subset(f.classes == 0)

    evidence = Evidence(
        agreement(second_class_lost, 40), usage(40), usage(40), class_names={0: "person", 2: "car"}
    )

    failed = judge(evidence, POLICY).failed

    assert any(f.startswith("class_f1[car] 0.000") for f in failed)
    assert not any(f.startswith("class_f1[person]") for f in failed)


def test_drift_on_the_candidates_cameras_holds_a_window_back():
    evidence = Evidence(agreement(same, 40), usage(40), usage(40), drift_events=1)

    assert [f.split()[0] for f in judge(evidence, POLICY).failed] == ["drift_events"]


def test_usage_between_two_heartbeats_survives_a_replica_restart_and_a_new_replica():
    before = {"a": {"1": usage(100), "2": usage(10, failed=1)}}
    now = {
        "a": {"1": usage(130), "2": usage(20, failed=1)},  # +30, +10
        "b": {"2": usage(5)},  # new since: counts whole
    }
    restarted = {"a": {"1": usage(7)}}  # totals went down: all of them are new

    window = between(before, now)

    assert (window["1"].ok, window["2"].ok, window["2"].failed) == (30, 15, 0)
    assert between(before, restarted)["1"].ok == 7
    assert usage(40, ms=12).p95_ms() == 15.0 and len(usage(1).buckets) == len(EDGES_MS) + 1


def test_a_window_survives_a_restart_of_the_controller():
    window = Window("r1", number=2, failed_windows=1, drift_events=3,
                    baseline={"a": {"1": usage(5)}}, class_names={0: "person"})  # fmt: skip
    window.agreement.add(agreement(swapped, 5))

    back = Window.from_json(window.to_json())

    assert back.to_json() == window.to_json()
    assert back.agreement.classes.f1 == window.agreement.classes.f1 == 0.0


def detections(camera: str, frame: int, version: str) -> Detections:
    message = Detections()
    message.ref.camera_id, message.ref.frame_id = camera, frame
    message.model.name, message.model.version = "m", version
    return message


def test_frames_pair_up_by_version_whichever_half_comes_first():
    pairs = Pairs(limit=100)

    assert pairs.add(detections("c", 1, "2"), serving="1", candidate="2") is None
    serving, candidate = pairs.add(detections("c", 1, "1"), serving="1", candidate="2")

    assert (serving.model.version, candidate.model.version) == ("1", "2")
    assert len(pairs) == 0
    # Redelivered after a restart: counted once.
    assert pairs.add(detections("c", 1, "1"), serving="1", candidate="2") is None
    assert pairs.add(detections("c", 1, "2"), serving="1", candidate="2") is None


def test_a_frame_a_fallback_tier_answered_is_no_half_of_a_pair():
    """A degraded frame names the fallback's model, whose version may read like serving's: it is
    not serving's answer, so the candidate's half goes on waiting for serving's own."""
    pairs = Pairs(limit=100)
    fallback = detections("c", 1, "1")
    fallback.model.name, fallback.degraded, fallback.tier = "m_int8", True, "int8"

    assert pairs.add(fallback, serving="1", candidate="2") is None
    assert pairs.add(detections("c", 1, "2"), serving="1", candidate="2") is None
    assert len(pairs) == 1  # the candidate's half, waiting
    serving, candidate = pairs.add(detections("c", 1, "1"), serving="1", candidate="2")
    assert (serving.degraded, serving.model.name, candidate.model.version) == (False, "m", "2")


def test_halves_whose_other_half_never_comes_are_dropped_oldest_first():
    pairs = Pairs(limit=3)
    for frame in range(5):
        pairs.add(detections("c", frame, "1"), serving="1", candidate="2")

    assert len(pairs) == 3
    assert pairs.add(detections("c", 0, "2"), serving="1", candidate="2") is None  # gone
    assert pairs.add(detections("c", 4, "2"), serving="1", candidate="2") is not None
