"""`steadyeye bench drift` end to end: a video that changes (the lens is covered) through a
stack of its own; its JSON names the alarm, counts no false one and measures the delay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.stack
WARMUP, CHANGE, FRAMES = 60, 110, 150


@pytest.fixture
def covered_at_110(vtest_avi, tmp_path: Path) -> Path:
    capture = cv2.VideoCapture(str(vtest_avi))
    path = tmp_path / "covered.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (768, 576))
    for frame in range(FRAMES):
        image = capture.read()[1]
        writer.write(image if frame < CHANGE else np.full_like(image, 35))
    writer.release()
    capture.release()
    return path


def test_the_bench_reports_the_alarm_after_the_change_and_no_false_one(covered_at_110, tmp_path):
    command = [sys.executable, "-m", "steadyeye.cli", "bench", "drift", "--json",
               "--stream", str(covered_at_110), "--warmup-frames", str(WARMUP),
               "--change-at-frame", str(CHANGE)]  # fmt: skip
    env = {**os.environ, "STEADYEYE_STACK_WORKDIR": str(tmp_path / "stack")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert set(result) == {"frames", "warmup_frames", "alarms", "false_alarms",
                           "first_alarm_after_change"}  # fmt: skip
    assert result["frames"] == FRAMES and result["false_alarms"] == 0
    assert 0 <= result["first_alarm_after_change"] <= 20
    assert "brightness" in result["alarms"][0]["signals"]
