"""The monitor service in the running pipeline: a camera's reference is learned from its first
frames, a covered lens opens a drift episode on steadyeye.drift.v1 naming the signals that
moved, and the camera's state is kept in Redis under the monitor's own namespace. What an
operator does with it: `steadyeye monitor status` shows a camera's signals against its
reference (and plots them); `accept` ends the open episode and learns the reference again; `pin`
makes a reference learned from a recording, through the served model, the camera's."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from steadyeye.cli import main
from steadyeye.v1.drift_pb2 import DriftEvent, DriftState
from tests.conftest import readyz, wait_for

pytestmark = pytest.mark.stack
WARMUP = 60  # STEADYEYE_MONITOR_WARMUP_FRAMES of the test stack (tests/conftest.py)
COVERED = 40
STARTED, ENDED = DriftState.DRIFT_STATE_STARTED, DriftState.DRIFT_STATE_ENDED


@pytest.fixture(scope="module")
def footage(vtest_frames) -> list[np.ndarray]:
    return vtest_frames[: WARMUP + 20]


def test_a_covered_lens_opens_a_drift_episode_naming_what_moved(stack, pipeline, camera_id,
                                                                 footage):  # fmt: skip
    for frame_id, image in enumerate(footage):  # the warm-up, then normal frames
        pipeline.send_frame(camera_id, frame_id, image)
    covered = np.full_like(footage[0], 35)
    for frame_id in range(len(footage), len(footage) + COVERED):
        pipeline.send_frame(camera_id, frame_id, covered)

    [event] = pipeline.read_messages(pipeline.topics.drift, DriftEvent, camera_id, 1, 90)

    assert event.state == DriftState.DRIFT_STATE_STARTED
    assert len(footage) < event.ref.frame_id <= len(footage) + 20
    moved = {s.name for s in event.signals}
    assert {"brightness", "flat_cell_share"} <= moved, moved
    assert all(s.statistic > s.threshold for s in event.signals)
    assert event.reference_id.startswith(f"{camera_id}@{WARMUP - 1}/")

    def saved_episode() -> int | None:  # saved after the event is flushed, before the commit
        state = pipeline.redis.get(f"steadyeye:state:monitor:{camera_id}")
        return json.loads(state)["episode_start"] if state else None

    assert wait_for(lambda: saved_episode() == event.ref.frame_id, 10), saved_episode()
    port = stack.service_ports["monitor"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert f'steadyeye_drift_active{{camera="{camera_id}"}} 1.0' in metrics


def kill_and_wait_back(stack) -> None:
    """kill -9; the stack's supervisor restarts the process, which must rejoin its group."""
    process = stack.processes["monitor"]
    old_pid = process.pid
    process.signal(signal.SIGKILL)
    port = stack.service_ports["monitor"]
    back = wait_for(lambda: process.pid != old_pid and readyz(port) == 200, 60, 0.1)
    assert back, f"monitor did not come back:\n{process.tail()}"


@pytest.mark.chaos
def test_a_monitor_killed_mid_stream_keeps_its_reference_and_its_open_episode(
    stack, pipeline, camera_id, footage
):
    def saved() -> dict:
        state = pipeline.redis.get(f"steadyeye:state:monitor:{camera_id}")
        return json.loads(state) if state else {}

    for frame_id, image in enumerate(footage):
        pipeline.send_frame(camera_id, frame_id, image)
    assert wait_for(lambda: saved().get("last_frame_id") == len(footage) - 1, 60)
    reference = saved()["references"][""]["id"]

    kill_and_wait_back(stack)  # between the warm-up and the change: the reference must stay
    covered = np.full_like(footage[0], 35)
    end = len(footage) + COVERED
    for frame_id in range(len(footage), end):
        pipeline.send_frame(camera_id, frame_id, covered)
    [event] = pipeline.read_messages(pipeline.topics.drift, DriftEvent, camera_id, 1, 90)
    assert event.reference_id == reference  # not learned again from the covered frames
    assert wait_for(lambda: saved().get("last_frame_id") == end - 1, 60)

    kill_and_wait_back(stack)  # during the episode: it must stay open, not start again
    for frame_id in range(end, end + COVERED):
        pipeline.send_frame(camera_id, frame_id, covered)
    assert wait_for(lambda: saved().get("last_frame_id") == end + COVERED - 1, 60)
    events = pipeline.read_messages(pipeline.topics.drift, DriftEvent, camera_id, 2, 5)
    assert [e.event_id for e in events] == [event.event_id], events


def monitor_cli(stack, *args: str) -> str:
    result = CliRunner().invoke(main, ["monitor", *args], env=stack.operator_env())
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.output


def test_status_accept_and_pin(stack, pipeline, camera_id, footage, tmp_path: Path):
    def state() -> dict:
        return json.loads(pipeline.redis.get(f"steadyeye:state:monitor:{camera_id}") or "{}")

    def drift(count: int) -> list[DriftEvent]:
        return pipeline.read_messages(pipeline.topics.drift, DriftEvent, camera_id, count, 90)

    covered, frame_id = np.full_like(footage[0], 35), 0

    def send(images) -> None:
        nonlocal frame_id
        for image in images:
            pipeline.send_frame(camera_id, frame_id, image)
            frame_id += 1
        assert wait_for(lambda: state().get("last_frame_id") == frame_id - 1, 60)

    send([*footage, *[covered] * 30])
    [started] = drift(1)

    plot = tmp_path / "signals.png"
    shown = monitor_cli(stack, "status", camera_id, "--plot", str(plot))
    assert f"drift episode open since frame {started.ref.frame_id}" in shown
    assert "brightness" in shown and "box_churn" in shown  # image and detector signals
    image = cv2.imread(str(plot))
    assert image is not None and image.shape[1] > 1000

    assert "accept applied" in monitor_cli(stack, "accept", camera_id)
    _, ended = drift(2)
    assert (ended.state, ended.event_id) == (ENDED, started.event_id)
    assert ended.note.startswith("accepted")
    assert state()["references"] == {}  # learning again, from the next frames

    recording = tmp_path / "recording.avi"
    writer = cv2.VideoWriter(str(recording), cv2.VideoWriter_fourcc(*"MJPG"), 10, (768, 576))
    for image in footage:
        writer.write(image)
    writer.release()
    assert "pin applied" in monitor_cli(stack, "pin", camera_id, "--recording", str(recording))
    pinned = state()["references"][""]["id"]
    assert pinned.startswith(f"{camera_id}@pinned:recording.avi/")

    send([covered] * 30)  # against the pinned reference at once: no warm-up to wait for
    _, _, again = drift(3)
    assert (again.state, again.reference_id) == (STARTED, pinned)
