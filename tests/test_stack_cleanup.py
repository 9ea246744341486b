"""The embedded stack cleans up after stacks that could not: payloads and Triton input regions
in /dev/shm of processes killed with SIGKILL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from steadyeye.embedded.stack import sweep_dead_payloads


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_what_dead_processes_left_is_removed_and_the_living_keep_theirs(tmp_path: Path):
    dead, alive = dead_pid(), os.getpid()
    leftovers = [tmp_path / f"steadyeye-{dead}-40001", tmp_path / f"steadyeye-{dead}-1a2b3c4d-0"]
    kept = [
        tmp_path / f"steadyeye-{alive}-40002",
        tmp_path / "steadyeye-notapid-1",
        tmp_path / "other",
    ]
    leftovers[0].mkdir()
    (leftovers[0] / "steadyeye:frame:cam:1.payload").write_bytes(b"pixels")
    leftovers[1].write_bytes(b"a Triton input region")
    kept[0].mkdir()
    for path in kept[1:]:
        path.write_bytes(b"x")

    removed = sweep_dead_payloads(tmp_path)

    assert sorted(removed) == sorted(leftovers)
    assert not any(p.exists() for p in leftovers)
    assert all(p.exists() for p in kept)
