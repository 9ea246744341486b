"""`steadyeye bench failover`: ingest replicas sharing live cameras through their consumer group
on steadyeye.cameras.v1, one replica killed with SIGKILL mid-run, and what the frames topic and
downstream saw.

The cameras are live streams from 127.0.0.1 (steadyeye/bench/livefeed.py: the sample clip at
its own rate), so their frame ids come from the Redis counter: a moved camera must continue
them, never reuse one. The killed replica is restarted by the supervisor, as Kubernetes would,
and rejoins: cameras move twice. Measured on the frames topic (what ingest published) and the
detections and dead-letter topics (what came out).
"""

from __future__ import annotations

import signal
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn

from services.core.messages import decode
from services.ingest import directory
from services.ingest.cameras import Camera
from services.ingest.lease import lease_key
from steadyeye.bench.livefeed import LiveFeed
from steadyeye.embedded.stack import Stack
from steadyeye.tally import TopicReader
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.frames_pb2 import Frame

CAMERA_PREFIX = "failover-"
RESUME_LIMIT_S = 90.0
DRAIN_TIMEOUT_S = 90.0


class _Seen:
    def __init__(self) -> None:
        self.captured: dict[str, list[float]] = defaultdict(list)  # camera -> capture times
        self.ids: dict[str, list[int]] = defaultdict(list)  # camera -> frame ids, as published
        self.answered: set[tuple[str, int]] = set()
        self.dead = 0  # records any hop dead-lettered

    def read(self, reader: TopicReader, stack: Stack) -> None:
        topics = stack.topics
        for record in reader.records():
            if not (record.key or b"").startswith(CAMERA_PREFIX.encode()):
                continue
            if record.topic == topics.frames:
                ref = decode(record.value, record.headers, Frame).ref
                self.ids[ref.camera_id].append(ref.frame_id)
                self.captured[ref.camera_id].append(ref.capture_time.ToMilliseconds() / 1000)
            elif record.topic == topics.detections:
                ref = decode(record.value, record.headers, Detections).ref
                self.answered.add((ref.camera_id, ref.frame_id))
            else:
                self.dead += 1

    def sent(self) -> set[tuple[str, int]]:
        return {(camera, i) for camera, ids in self.ids.items() for i in ids}


def bench_failover(cameras: int, replicas: int, video: Path, console: Console,
                   warmup_s: float = 15.0, after_s: float = 15.0) -> dict:  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="steadyeye-bench-failover-") as workdir,
        LiveFeed(video) as feed,
        Stack(say=lambda text: console.print(f"[dim]{text}[/dim]"), fresh_redis=True,
              workdir=Path(workdir), monitor=False) as stack,
    ):  # fmt: skip
        return _run(stack, feed, cameras, replicas, console, warmup_s, after_s)


def _run(stack: Stack, feed: LiveFeed, cameras: int, replicas: int, console: Console,
         warmup_s: float, after_s: float) -> dict:  # fmt: skip
    names = stack.start_ingest_replicas(replicas)  # sharing the cameras topic
    ids = [f"{CAMERA_PREFIX}{i}" for i in range(cameras)]
    directory.publish(stack.bootstrap, stack.topics.cameras,
                      [Camera(id=i, source=feed.url(i)) for i in ids], [])  # fmt: skip
    topics = stack.topics
    reader = TopicReader(stack.bootstrap, [topics.frames, topics.detections, topics.deadletter])
    seen = _Seen()
    try:
        columns = (TextColumn("[bold]{task.fields[phase]}"), TimeElapsedColumn(),
                   TextColumn("{task.fields[counts]}"))  # fmt: skip
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("failover", phase="warm-up", counts="")

            def wait(seconds: float, until: Callable[[], bool] = lambda: False,
                     phase: str = "") -> bool:  # fmt: skip
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    seen.read(reader, stack)
                    counts = f"cameras flowing {len(seen.ids)}/{cameras}, frames {len(seen.sent())}"
                    progress.update(task, phase=phase, counts=counts)
                    if until():
                        return True
                return False

            if not wait(RESUME_LIMIT_S, lambda: len(seen.ids) == cameras, "cameras starting"):
                raise RuntimeError(f"only {len(seen.ids)} of {cameras} cameras started")
            wait(warmup_s, phase="warm-up")
            victim = max(names, key=lambda name: len(_cameras_of(stack, name, ids)))
            moved = _cameras_of(stack, victim, ids)
            killed_at = time.time()
            stack.processes[victim].signal(signal.SIGKILL)  # the supervisor restarts it

            def resumed() -> bool:
                return all(max(seen.captured[c], default=0) > killed_at for c in ids)

            wait(RESUME_LIMIT_S, resumed, f"{victim} killed, {len(moved)} cameras to move")
            wait(after_s, phase="after the failover")
            for name in names:  # SIGTERM: every frame read is on the frames topic
                stack.stop_service(name)
            wait(DRAIN_TIMEOUT_S, lambda: seen.sent() <= seen.answered, "draining")
    finally:
        reader.close()
    return _result(seen, ids, moved, killed_at, cameras, replicas, victim)


def _cameras_of(stack: Stack, name: str, ids: list[str]) -> list[str]:
    """The cameras whose lease the replica holds (its id is host-pid)."""
    pid = stack.processes[name].pid
    admin = stack.redis_admin()
    owners = {camera: admin.get(lease_key(camera)) for camera in ids}
    mine = f"-{pid}".encode()
    return [camera for camera, owner in owners.items() if owner and owner.endswith(mine)]


def _result(seen: _Seen, ids: list[str], moved: list[str], killed_at: float, cameras: int,
            replicas: int, victim: str) -> dict:  # fmt: skip
    def first_after(camera: str) -> float | None:
        after = [t for t in seen.captured[camera] if t > killed_at]
        return min(after) - killed_at if after else None

    resume = [r for r in (first_after(c) for c in moved) if r is not None]
    gaps = {c: max(np.diff(sorted(seen.captured[c])), default=0.0) for c in ids}
    duplicates = sum(len(v) - len(set(v)) for v in seen.ids.values())
    return {
        "cameras": cameras,
        "replicas": replicas,
        "cameras_resumed": sum(first_after(c) is not None for c in ids),
        "resume_s": {
            "max": round(max(resume), 2) if resume else None,
            "p50": round(statistics.median(resume), 2) if resume else None,
        },
        "duplicate_frame_ids": duplicates,
        "frames_lost": len(seen.sent() - seen.answered),
        "killed": victim,
        "cameras_moved": len(moved),
        # The longest pause of any camera over the run (the restarted replica's return moves
        # cameras once more).
        "max_gap_s": round(max(gaps.values()), 2),
        "frames_sent": len(seen.sent()),
        "frames_dead_lettered": seen.dead,
    }
