"""`steadyeye bench cameras`: the live camera count this node holds in real time, Steadyeye
(one ingest replica, cameras added at runtime) beside the one-process-per-camera baseline
(issue 18). Short steps here: the figures are for docs/performance.md, measured on a quiet
machine; this checks the bench measures what it says. The JSON keys are an interface."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.stack


def test_bench_cameras_steps_up_both_and_reports_the_count_held(tmp_path):
    command = [sys.executable, "-m", "steadyeye.cli", "bench", "cameras", "--json",
               "--max-cameras", "2", "--step-s", "4", "--warmup-s", "2"]  # fmt: skip
    env = {**os.environ, "STEADYEYE_STACK_WORKDIR": str(tmp_path)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)

    assert {"cameras", "baseline_cameras", "cpu_ms_per_frame", "baseline_cpu_ms_per_frame",
            "steps"} <= set(result)  # fmt: skip
    for side, count in (("steadyeye", "cameras"), ("baseline", "baseline_cameras")):
        steps = result["steps"][side]
        assert [s["cameras"] for s in steps] == list(range(1, len(steps) + 1))
        assert all(s["frames"] > 0 and s["p99_ms"] is not None for s in steps)
        # Stepping stops at the first step that broke real time; the count is the last held.
        assert all(s["held"] for s in steps[:-1])
        held = [s for s in steps if s["held"]]
        assert result[count] == (held[-1]["cameras"] if held else 0)
        for s in steps:  # held: kept up, p99 within 1 s, nothing shed, not falling behind
            kept_up = s["frames"] >= 0.95 * s["cameras"] * result["fps_per_camera"] * 4
            expected = kept_up and s["p99_ms"] <= 1000 and s["shed"] == 0
            assert s["held"] == (expected and s["fell_behind_ms"] <= 1000)
