"""`steadyeye bench rollout`: a candidate started live on a stack of its own, and what a
downstream consumer saw. The JSON keys are an interface (issue 16): decision, reason,
frames_to_decision, frames_lost, downstream_versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA

pytestmark = pytest.mark.stack
FRAMES = 80


def bench(candidate: Path, scratch: Path) -> dict:
    command = [sys.executable, "-m", "steadyeye.cli", "bench", "rollout", "--json",
               "--candidate", str(candidate), "--family", "yolox", "--mode", "shadow",
               "--frames", str(FRAMES), "--policy", str(DATA / "rollout-policy.yaml")]  # fmt: skip
    env = {**os.environ, "STEADYEYE_STACK_WORKDIR": str(scratch)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_candidate_that_detects_nothing_is_rolled_back_and_downstream_never_sees_it(
    model_candidates, tmp_path
):
    result = bench(model_candidates["div255"], tmp_path)

    assert result["decision"] == "rolled_back"
    assert result["reason"].startswith("hard breach: ") and "detections_ratio" in result["reason"]
    assert 0 < result["frames_to_decision"] <= FRAMES
    assert result["frames_lost"] == 0
    assert result["downstream_versions"] == {result["serving_version"]: FRAMES}
