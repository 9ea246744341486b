"""`steadyeye bench failover`: live cameras shared by ingest replicas through their consumer
group; one replica killed with SIGKILL mid-run (issue 18). The chaos row "an ingest replica
dies" of docs/guarantees.md. The JSON keys are an interface: cameras, replicas,
cameras_resumed, resume_s {max, p50}, duplicate_frame_ids, frames_lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.chaos]
SESSION_TIMEOUT_S = 6.0  # the embedded stack's STEADYEYE_KAFKA_SESSION_TIMEOUT_MS
LEASE_TTL_S = 5.0  # STEADYEYE_INGEST_LEASE_TTL_S


def test_a_killed_replicas_cameras_resume_on_the_other_without_duplicate_or_lost_frames(
    tmp_path,
):
    command = [sys.executable, "-m", "steadyeye.cli", "bench", "failover", "--json", "--cameras",
               "6", "--replicas", "2", "--warmup-s", "5", "--after-s", "5"]  # fmt: skip
    env = {**os.environ, "STEADYEYE_STACK_WORKDIR": str(tmp_path)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    print(json.dumps(result))  # the figures of the chaos table

    assert {"cameras", "replicas", "cameras_resumed", "resume_s", "duplicate_frame_ids",
            "frames_lost"} <= set(result)  # fmt: skip
    assert (result["cameras"], result["replicas"]) == (6, 2)
    assert result["cameras_moved"] > 0
    assert result["cameras_resumed"] == 6
    # Death is noticed after the session timeout; the rebalance and the lease add seconds.
    assert result["resume_s"]["max"] <= SESSION_TIMEOUT_S + LEASE_TTL_S + 10
    assert result["duplicate_frame_ids"] == 0
    assert result["frames_lost"] == 0
    assert result["frames_dead_lettered"] == 0
