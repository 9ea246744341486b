"""The README's demo command, end to end, as a newcomer runs it (shorter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import shared_file

FRAMES = 40


@pytest.mark.stack
@pytest.mark.parametrize(
    "store",
    [
        pytest.param({}, id="payloads-in-shared-memory"),  # the embedded default
        pytest.param({"STEADYEYE_CLAIM_CHECK_STORE": "redis"}, id="payloads-in-redis"),  # Helm's
    ],
)
def test_demo_runs_the_sample_clip_through_the_whole_stack(tmp_path, store):
    shared_file("media", "vtest.avi")
    env = {**os.environ, "STEADYEYE_STACK_WORKDIR": str(tmp_path), **store}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "steadyeye.cli",
            "demo",
            "--frames",
            str(FRAMES),
            "--pace",
            "fast",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)

    assert summary["frames_ingested"] == summary["frames_detected"] == FRAMES
    assert summary["frames_lost"] == 0
    assert summary["frames_with_class"]["person"] >= 0.95
    assert summary["frames_tracked"] == FRAMES and summary["tracks_started"] > 0
    assert set(summary["latency_ms"]) == {"p50", "p95", "p99"}
    assert isinstance(summary["alerts_by_rule"], dict)
    assert "detected" in done.stderr  # live progress went to stderr
