"""What an operator does with the drift monitor of the running pipeline: `steadyeye monitor
status` shows a camera's signals against its reference (and plots them); `accept` ends the open
episode and learns the reference again; `pin` makes a reference learned from a recording,
through the served model, the camera's."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from steadyeye.cli import main
from steadyeye.v1.drift_pb2 import DriftEvent, DriftState
from tests.conftest import wait_for

pytestmark = pytest.mark.stack
WARMUP = 60  # STEADYEYE_MONITOR_WARMUP_FRAMES of the test stack (tests/conftest.py)
STARTED, ENDED = DriftState.DRIFT_STATE_STARTED, DriftState.DRIFT_STATE_ENDED


@pytest.fixture(scope="module")
def footage(vtest_avi) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(vtest_avi))
    frames = [capture.read()[1] for _ in range(WARMUP + 20)]
    capture.release()
    return frames


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
