"""Tracker updates per second on one core: ours beside the public trackers, on one stream.

The stream is `objects` people walking across a 1280x720 frame and turning at its edges, so
all of them are in every frame; each detection is jittered and missed one time in ten (so
tracks go lost, coast and are re-found), with a false positive a frame on average. Every
tracker runs the same stream `rounds` times pinned to one CPU; the best round counts, since
on a shared machine the slower ones measure the neighbours.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from services.tracking.tracker import TrackerConfig
from steadyeye.bench.mot import MotSequence
from steadyeye.bench.tracking import BASELINES, baseline_name, run_baseline, run_ours

OBJECTS = 10
UPDATES = 2000
ROUNDS = 3
WIDTH, HEIGHT = 1280, 720
# Ours with only ByteTrack's stages: what the additions (recovery, direction, scene motion,
# coasting) cost.
STAGES_ONLY = TrackerConfig(
    recovery_thresh=None, direction_weight=0.0, scene_motion_ref=None, coast_frames=0
)


def speed_sequence(objects: int = OBJECTS, updates: int = UPDATES, seed: int = 0) -> MotSequence:
    """The stream, as a MOT sequence without ground truth."""
    rng = np.random.default_rng(seed)
    size = np.array([40.0, 100.0])
    low, high = size / 2, np.array([WIDTH, HEIGHT]) - size / 2
    centre = rng.uniform(low, high, (objects, 2))
    velocity = rng.uniform(-4, 4, (objects, 2))
    rows = []
    for frame in range(1, updates + 1):
        centre += velocity
        outside = (centre < low) | (centre > high)
        velocity[outside] *= -1  # turn at the edge
        centre = np.clip(centre, low, high)
        seen = centre[rng.random(objects) > 0.1]
        seen = seen + rng.normal(0, 1.5, seen.shape)
        ghosts = rng.uniform(low, high, (rng.poisson(1.0), 2))
        scores = np.r_[rng.uniform(0.5, 0.95, len(seen)), rng.uniform(0.1, 0.7, len(ghosts))]
        for c, score in zip(np.vstack([seen, ghosts]), scores, strict=True):
            rows.append([frame, *(c - size / 2), *size, score])
    return MotSequence(
        name=f"speed-{objects}",
        frame_rate=30.0,
        length=updates,
        width=WIDTH,
        height=HEIGHT,
        dets=np.array(rows),
        gt=np.zeros((0, 8)),
    )


@contextmanager
def one_core() -> Iterator[int | None]:
    """Run the block on the lowest CPU this process may use; yields that CPU (None where the
    platform cannot pin, e.g. macOS: the figures are then for an unpinned process)."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, allowed)


def bench_tracking_speed(
    objects: int = OBJECTS, updates: int = UPDATES, rounds: int = ROUNDS
) -> dict[str, Any]:
    """Updates per second of ours (defaults, and ByteTrack's stages only) and of every
    baseline on the same stream, best of `rounds`, and each as a ratio to ours.

    Returns {"objects", "updates", "rounds", "cpu" (the CPU pinned to, or None),
    "updates_per_s": {name: rate}, "ratio_to_ours": {name: rate / ours}}; "ours" and
    "ours (ByteTrack stages only)" come first, then the baselines with their library
    versions."""
    seq = speed_sequence(objects, updates)
    runs = {
        "ours": lambda: run_ours(seq)[1],
        "ours (ByteTrack stages only)": lambda: run_ours(seq, STAGES_ONLY)[1],
        **{baseline_name(n): lambda n=n: run_baseline(seq, None, n)[1] for n in BASELINES},
    }
    with one_core() as cpu:
        rates = {name: max(run() for _ in range(rounds)) for name, run in runs.items()}
    ours = rates["ours"]
    return {
        "objects": objects,
        "updates": updates,
        "rounds": rounds,
        "cpu": cpu,
        "updates_per_s": {name: round(rate) for name, rate in rates.items()},
        "ratio_to_ours": {name: round(rate / ours, 2) for name, rate in rates.items()},
    }
