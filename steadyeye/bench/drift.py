"""`steadyeye bench drift`: a video through the real embedded pipeline (fast pace), the monitor
learning its reference from the first frames (or from a reference video played first), and the
drift episodes it opens, against a known change point."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import cv2
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from services.core.messages import decode
from services.monitor import control
from steadyeye.embedded.stack import Stack
from steadyeye.monitor_commands import plot_history
from steadyeye.v1.drift_pb2 import DriftEvent, DriftState

CAMERA = "drift-bench"
STARTED = DriftState.DRIFT_STATE_STARTED
IDLE_TIMEOUT_S = 120.0  # no frame reaches the monitor for this long: give up


def _frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def _concatenate(first: Path, second: Path, out: Path) -> None:
    """One file, so that one camera's frame ids run on from the reference into the stream."""
    writer = None
    for path in (first, second):
        capture = cv2.VideoCapture(str(path))
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if writer is None:
                size = (image.shape[1], image.shape[0])
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
            writer.write(cv2.resize(image, size))
        capture.release()
    if writer is None:
        raise RuntimeError(f"no frame could be read from {first} or {second}")
    writer.release()


def bench_drift(
    stream: Path,
    reference: Path | None,
    warmup_frames: int,
    change_at: int | None,
    console: Console,
    plot: Path | None = None,
) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        source, offset = stream, 0
        if reference is not None:
            source = Path(scratch) / "reference-then-stream.avi"
            _concatenate(reference, stream, source)
            offset = _frames(reference)
            warmup_frames = offset
        total = _frames(source)
        if total <= warmup_frames:
            raise RuntimeError(f"{total} frames: no more than the {warmup_frames} of the warm-up")
        os.environ["STEADYEYE_MONITOR_WARMUP_FRAMES"] = str(warmup_frames)
        stack = Stack(say=lambda text: console.print(f"[dim]{text}[/dim]"), fresh_redis=True)
        stack.use_camera({"id": CAMERA, "source": str(source), "pace": "fast"})
        with stack:
            events = _run(stack, total, console)
            history = control.read_history(stack.redis_admin(), CAMERA)
    if plot is not None:
        marks = [(e.ref.frame_id, "alarm" if e.state == STARTED else "ended") for e in events]
        if change_at is not None:
            marks.append((change_at + offset, "change"))
        plot_history(f"{CAMERA} ({stream.name})", history, plot, marks)
        console.print(f"plot: {plot}")
    alarms = [
        {"frame": e.ref.frame_id - offset, "signals": [s.name for s in e.signals]}
        for e in events
        if e.state == STARTED
    ]
    after = [a["frame"] for a in alarms if change_at is not None and a["frame"] >= change_at]
    return {
        "frames": total - offset,
        "warmup_frames": warmup_frames,
        "alarms": alarms,
        "false_alarms": len(alarms) - len(after),
        "first_alarm_after_change": after[0] - change_at if after else None,
    }


def _run(stack: Stack, total: int, console: Console) -> list[DriftEvent]:
    """Until the monitor has seen the last frame; every drift event of the camera."""
    admin = stack.redis_admin()
    consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    topic = stack.topics.drift
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    events: list[DriftEvent] = []

    def read(timeout_ms: int) -> None:
        for records in consumer.poll(timeout_ms=timeout_ms).values():
            events.extend(decode(r.value, r.headers, DriftEvent) for r in records)

    seen, progressed_at = -1, time.monotonic()
    alarms = TextColumn("{task.fields[events]} drift events")
    try:
        with Progress(TextColumn("monitor"), BarColumn(), MofNCompleteColumn(), alarms,
                      console=console) as progress:  # fmt: skip
            task = progress.add_task("frames", total=total, events=0)
            while seen < total - 1:
                read(500)
                state = admin.get(f"steadyeye:state:monitor:{CAMERA}")
                last = json.loads(state)["last_frame_id"] if state else -1
                if last > seen:
                    seen, progressed_at = last, time.monotonic()
                elif time.monotonic() - progressed_at > IDLE_TIMEOUT_S:
                    raise RuntimeError(f"the monitor stopped at frame {seen} of {total}")
                progress.update(task, completed=seen + 1, events=len(events))
            read(2000)  # published before the state that says the last frame was seen
    finally:
        consumer.close()
    return events
