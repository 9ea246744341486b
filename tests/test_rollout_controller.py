"""The rollout controller on the real embedded stack: candidates built from the real YOLOX-nano
are started live in shadow and judged on the frames both versions answered; it promotes or
rolls back by itself, with the reason, and a killed controller or inference replica resumes
and reaches the same decision. The stack's policy is tests/data/rollout-policy.yaml (windows of
60 compared frames, no latency gates)."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from services.core.messages import decode
from services.rollout import state as rollout_state
from services.rollout import window as windows
from services.rollout.control import Rollouts
from steadyeye.rollout.candidate import import_version
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.rollouts_pb2 import RolloutEvent, RolloutStep
from tests.conftest import wait_for
from tests.test_rollout import rollouts_on

pytestmark = pytest.mark.stack
STARTED, PROMOTED, ROLLED_BACK, ABORTED = (
    RolloutStep.ROLLOUT_STEP_STARTED,
    RolloutStep.ROLLOUT_STEP_PROMOTED,
    RolloutStep.ROLLOUT_STEP_ROLLED_BACK,
    RolloutStep.ROLLOUT_STEP_ABORTED,
)
ENDS = (PROMOTED, ROLLED_BACK, ABORTED)


@pytest.fixture(scope="module")
def footage(vtest_frames) -> list[np.ndarray]:
    return vtest_frames


@pytest.fixture
def rollouts(stack) -> Iterator[Rollouts]:
    yield from rollouts_on(stack)


def start_shadow(stack, rollouts: Rollouts, export: Path) -> str:
    """The export imported as the next version and started in shadow on every frame."""
    name = stack.model.name
    version = str(import_version(export, "yolox", rollouts.repository / name))
    return rollouts.start(name, version, "shadow", 100).rollout_id


def send(pipeline, camera: str, footage: list[np.ndarray], first: int, count: int) -> list[int]:
    ids = list(range(first, first + count))
    for frame_id in ids:
        pipeline.send_frame(camera, frame_id, footage[frame_id % len(footage)])
    return ids


def steps(pipeline, rollout_id: str, until: tuple = ENDS, timeout_s: float = 180) -> list:
    """The rollout's events, up to the first in `until`."""
    found: list[RolloutEvent] = []

    def ours(record) -> bool:
        event = decode(record.value, record.headers, RolloutEvent)
        if event.rollout_id != rollout_id or any(e.step in until for e in found):
            return False
        found.append(event)
        return event.step in until

    pipeline.read(pipeline.topics.rollouts, ours, 1, timeout_s)
    return found


def served(pipeline, camera: str, ids: list[int]) -> dict[int, Detections]:
    found = pipeline.read_messages(pipeline.topics.detections, Detections, camera, len(ids), 120)
    return {d.ref.frame_id: d for d in found}


def test_an_int8_export_is_promoted_live(stack, pipeline, rollouts, model_candidates, footage):
    name, camera = stack.model.name, f"int8-{uuid.uuid4().hex[:8]}"
    rollout_id = start_shadow(stack, rollouts, model_candidates["int8"])
    candidate = rollouts.current(name).candidate

    ids = send(pipeline, camera, footage, 0, 80)
    events = steps(pipeline, rollout_id)

    assert [e.step for e in events] == [STARTED, PROMOTED], [e.reason for e in events]
    evidence = events[-1].evidence
    assert evidence["frames"] >= 60 and evidence["class_f1"] >= 0.85, evidence
    assert 0.7 <= evidence["detections_ratio"] <= 1.3
    assert wait_for(lambda: rollouts.current(name).settled, 60)
    state = rollouts.current(name)
    assert (state.state, state.serving, state.retired) == ("promoted", candidate, "1")
    later = send(pipeline, camera, footage, len(ids), 3)
    downstream = served(pipeline, camera, ids + later)
    assert sorted(downstream) == ids + later  # 0 frames lost
    assert {downstream[i].model.version for i in later} == {candidate}


def test_a_canary_is_compared_on_its_cameras_frames_and_promoted(
    stack, pipeline, rollouts, model_candidates, footage
):
    """Canary: the candidate serves the camera downstream; the serving version answers the
    compared frames to the shadow topic, and the controller judges the pairs."""
    name, camera = stack.model.name, f"canary-{uuid.uuid4().hex[:8]}"
    version = str(import_version(model_candidates["int8"], "yolox", rollouts.repository / name))
    started = rollouts.start(name, version, "canary", 100, compare_percent=100)

    ids = send(pipeline, camera, footage, 0, 80)
    events = steps(pipeline, started.rollout_id)

    assert [e.step for e in events] == [STARTED, PROMOTED], [e.reason for e in events]
    assert events[-1].evidence["frames"] >= 60
    downstream = served(pipeline, camera, ids)
    assert sorted(downstream) == ids
    assert {d.model.version for d in downstream.values()} == {version}  # the canary's camera
    compared = pipeline.read_messages(pipeline.topics.shadow, Detections, camera, 60, 60)
    assert {d.model.version for d in compared} == {"1"}


@pytest.mark.parametrize(
    ("export", "gates"),
    [("div255", {"detections_ratio", "box_f1", "class_f1"}), ("permuted", {"class_f1"})],
)
def test_a_broken_export_is_rolled_back_by_itself_and_never_reaches_downstream(
    stack, pipeline, rollouts, model_candidates, footage, export, gates
):
    name, camera = stack.model.name, f"{export}-{uuid.uuid4().hex[:8]}"
    rollout_id = start_shadow(stack, rollouts, model_candidates[export])

    ids = send(pipeline, camera, footage, 0, 60)
    events = steps(pipeline, rollout_id)

    assert [e.step for e in events] == [STARTED, ROLLED_BACK], [e.reason for e in events]
    back = events[-1]
    assert back.reason.startswith("hard breach: ")
    assert {g.split()[0] for g in back.failed_gates} == gates
    if export == "permuted":  # the same objects found, named wrongly
        assert back.evidence["box_f1"] >= 0.9 > 0.5 > back.evidence["class_f1"]
    assert wait_for(lambda: rollouts.current(name).settled, 60)
    assert rollouts.ready_versions(name) == [1]
    downstream = served(pipeline, camera, ids)
    assert sorted(downstream) == ids  # 0 frames lost
    assert {d.model.version for d in downstream.values()} == {"1"}  # nothing of the candidate


def test_killed_controller_and_inference_resume_the_window_and_decide_the_same(
    stack, pipeline, rollouts, model_candidates, footage
):
    name, camera = stack.model.name, f"resume-{uuid.uuid4().hex[:8]}"
    rollout_id = start_shadow(stack, rollouts, model_candidates["int8"])
    first = send(pipeline, camera, footage, 0, 40)

    def window_frames() -> int:
        window = windows.load(stack.redis_admin(), name)
        return window.agreement.frames if window and window.rollout_id == rollout_id else 0

    assert wait_for(lambda: window_frames() >= 30, 120)  # saved with the committed offsets
    for key in ("rollout", "inference"):
        process = stack.processes[key]
        pid = process.pid
        process.signal(signal.SIGKILL)
        assert wait_for(lambda p=process, old=pid: p.running() and p.pid != old, 60)
    later = send(pipeline, camera, footage, len(first), 40)
    events = steps(pipeline, rollout_id)

    assert [e.step for e in events] == [STARTED, PROMOTED], [e.reason for e in events]
    # The window went on from where it was saved: fewer frames came after the kill than a
    # window holds, and no second window was needed.
    assert events[-1].evidence["window"] == 1 and len(later) < 60 <= events[-1].evidence["frames"]
    downstream = served(pipeline, camera, first + later)
    assert sorted(downstream) == first + later


def test_a_step_whose_actor_died_is_finished_once_by_settle(
    stack, pipeline, rollouts, model_candidates
):
    """`rollout abort` saved its step, then died before Triton or the event: settle (what the
    controller runs once such a step is stale) finishes it, with one event."""
    name = stack.model.name
    version = str(import_version(model_candidates["int8"], "yolox", rollouts.repository / name))
    running = rollouts.start(name, version, "shadow", 10, auto=False)
    rollout_state.save(
        stack.redis_admin(),
        replace(running, state="aborted", retired=version, reason="operator gone", settled=False),
    )

    settled = rollouts.settle(name, stale_s=0)

    assert settled is not None and settled.settled and settled.state == "aborted"
    assert rollouts.settle(name, stale_s=0) is None  # nothing left to finish
    assert rollouts.ready_versions(name) == [1]
    events = steps(pipeline, running.rollout_id)
    assert [(e.step, e.reason) for e in events] == [(STARTED, ""), (ABORTED, "operator gone")]
