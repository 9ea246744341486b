"""`steadyeye bench capture`: a video through the real embedded pipeline with the capture service
and a strategies file, and what it took for labelling; `--compare` also runs the pipeline
without capture, in the same go, for its cost to throughput."""

from __future__ import annotations

import time
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from services.capture.dataset.query import stats
from services.capture.dataset.store import Store
from steadyeye.embedded.stack import Stack
from steadyeye.tally import Tally, TopicReader

CAMERA = "capture-bench"
GROUP = "steadyeye-capture"
STATS_KEY = "steadyeye:capture:stats"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "capture-strategies.yaml"
IDLE_TIMEOUT_S = 120.0


def bench_capture(
    source: str, frames: int, out: Path, strategies: Path | None, console: Console
) -> dict:
    run = _run(source, frames, console, strategies or EXAMPLE, out)
    return {"frames": frames, **run}


def bench_capture_overhead(source: str, frames: int, console: Console, rounds: int) -> dict:
    """Pipeline frames/s without capture and with it (the example strategies), alternating the
    order round by round so a machine that gets busier weighs on both alike."""
    import tempfile

    runs: dict[str, list[float]] = {"without": [], "with": []}
    for round_ in range(rounds):
        order = ("without", "with") if round_ % 2 == 0 else ("with", "without")
        for mode in order:
            console.print(f"round {round_ + 1}/{rounds}: pipeline {mode} capture")
            with tempfile.TemporaryDirectory() as scratch:
                strategies = EXAMPLE if mode == "with" else None
                run = _run(source, frames, console, strategies, Path(scratch) / "dataset")
            runs[mode].append(run["pipeline_fps"])
    median = {mode: sorted(fps)[len(fps) // 2] for mode, fps in runs.items()}
    return {
        "frames": frames,
        "rounds": rounds,
        "fps_without_capture": runs["without"],
        "fps_with_capture": runs["with"],
        "ratio_of_medians": round(median["with"] / median["without"], 3),
    }


def _run(source: str, frames: int, console: Console, strategies: Path | None, out: Path) -> dict:
    stack = Stack(say=lambda text: console.print(f"[dim]{text}[/dim]"), fresh_redis=True,
                  capture_strategies=strategies, capture_dataset=str(out))  # fmt: skip
    stack.use_camera({"id": CAMERA, "source": source, "pace": "fast", "max_frames": frames,
                      "loop": True})  # fmt: skip
    with stack:
        started = time.monotonic()
        _wait_detected(stack, frames, console)
        fps = frames / (time.monotonic() - started)
        if strategies is None:
            return {"pipeline_fps": round(fps, 2)}
        _wait_caught_up(stack)
        counts = {k.decode(): int(v) for k, v in stack.redis_admin().hgetall(STATS_KEY).items()}
    # Stopped: capture flushed its dataset's index files on the way out.
    dataset = stats(Store(str(out)))
    return {
        "captured": dataset.images,
        "by_reason": dict(sorted(dataset.by_reason.items())),
        "dataset": str(out),
        "duplicates_suppressed": counts.get("duplicate", 0),
        "limited": counts.get("limited", 0),
        "pixels_expired": counts.get("expired", 0),
        "pipeline_fps": round(fps, 2),
    }


def _wait_detected(stack: Stack, frames: int, console: Console) -> None:
    tally = Tally(CAMERA)
    topics = {"frames": stack.topics.frames, "detections": stack.topics.detections}
    reader = TopicReader(stack.bootstrap, list(topics.values()))
    progressed, seen = time.monotonic(), 0
    try:
        with Progress(TextColumn("pipeline"), BarColumn(), MofNCompleteColumn(),
                      console=console) as progress:  # fmt: skip
            task = progress.add_task("frames", total=frames)
            while len(tally.detected) < frames:
                reader.poll_into(tally, topics, lambda _alert: None)
                if len(tally.detected) > seen:
                    seen, progressed = len(tally.detected), time.monotonic()
                elif time.monotonic() - progressed > IDLE_TIMEOUT_S:
                    raise RuntimeError(f"the pipeline stopped at {seen} of {frames} frames")
                progress.update(task, completed=seen)
    finally:
        reader.close()


def _wait_caught_up(stack: Stack) -> None:
    """Until capture has committed every record of its input topics (it may lag: it is off the
    critical path), bounded."""
    topics = [stack.topics.detections, stack.topics.tracks, stack.topics.drift]
    consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap)
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        ends = consumer.end_offsets(partitions)
        deadline = time.monotonic() + IDLE_TIMEOUT_S
        while time.monotonic() < deadline:
            committed = admin.list_group_offsets({GROUP: partitions}).get(GROUP, {})
            behind = [tp for tp in partitions if ends[tp] and
                      (tp not in committed or committed[tp].offset < ends[tp])]  # fmt: skip
            if not behind:
                return
            time.sleep(0.5)
        raise RuntimeError(f"capture did not catch up on {behind}")
    finally:
        consumer.close()
        admin.close()
