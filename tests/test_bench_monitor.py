"""`steadyeye bench monitor` on a few frames of the sample clip, against the stack's Redis: its
JSON has every figure, each positive and in the order the monitor's design implies, and it
leaves nothing of its cameras in Redis. Never a timing: those are in docs/performance.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.stack
CAMERAS, FRAMES, WARMUP = 2, 70, 50


def test_the_bench_reports_the_monitors_cost_per_frame_and_per_camera(stack, vtest_avi):
    command = [sys.executable, "-m", "steadyeye.cli", "bench", "monitor", "--json",
               "--source", str(vtest_avi), "--cameras", str(CAMERAS), "--frames", str(FRAMES),
               "--warmup-frames", str(WARMUP)]  # fmt: skip
    env = {**os.environ, **stack.operator_env()}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert set(result) == {"frames", "cameras", "warmup_frames", "tested_frames",
                           "monitor_cpu_ms", "baseline_cpu_ms_per_frame", "memory_per_camera",
                           "episodes_started", "ratios"}  # fmt: skip
    assert (result["frames"], result["cameras"]) == (FRAMES, CAMERAS)
    assert (result["warmup_frames"], result["tested_frames"]) == (WARMUP, FRAMES - WARMUP)

    cpu = result["monitor_cpu_ms"]
    for phase in ("learning_per_frame", "testing_per_frame"):
        assert set(cpu[phase]) == {"mean", "p50", "p95", "p99"}
        assert 0 < cpu[phase]["p50"] <= cpu[phase]["p99"]
    assert 0 < cpu["calibration_per_camera"]["mean"] <= cpu["calibration_per_camera"]["max"]
    assert all(v > 0 for k, v in cpu["split_mean"].items() if k != "learning_commit")
    for baseline in ("quality_meter", "model"):
        assert result["baseline_cpu_ms_per_frame"][baseline]["mean"] > 0
    assert all(v > 0 for v in result["ratios"].values())

    memory = result["memory_per_camera"]
    # The warm-up's frames are let go once the reference is learned from them.
    assert memory["heap_bytes_end_of_warmup"] > memory["heap_bytes_testing"] > 0
    assert memory["state_json_bytes_end_of_warmup"] > memory["state_json_bytes_testing"] > 0
    assert memory["calibration_peak_bytes"] > 0
    assert memory["state_json_bytes"] > 0 and memory["state_redis_bytes"] > 0
    assert memory["history_points"] == 2  # frames 50 and 60: a point every 10 tested frames
    assert memory["history_points_at_cap"] >= 2000  # STEADYEYE_MONITOR_HISTORY_POINTS
    assert memory["history_redis_bytes_per_point"] > 0

    assert not list(stack.redis_admin().scan_iter(match="*bench-monitor-*"))
