"""`steadyeye bench rollout`: a candidate started live on the embedded stack and the controller's
decision, as a downstream consumer sees it.

The stack comes up without a camera; the candidate is imported as the model's next version and
started (shadow or canary); then the sample clip plays (looped, as fast as the pipeline takes
it) until every frame is downstream and the controller has decided, or it is clear that it will
not. What downstream saw is counted from the detections topic: frames lost, and which version
answered how many frames.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from services.core.messages import decode
from services.rollout.state import Mode
from steadyeye.embedded.stack import Stack
from steadyeye.rollout.candidate import import_version
from steadyeye.tally import TopicReader
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.rollouts_pb2 import RolloutEvent, RolloutStep

CAMERA = "rollout-bench"
IDLE_TIMEOUT_S = 120.0
# After the last frame, how long a decision may still take (the controller ticks every second).
DECISION_GRACE_S = 15.0
DECISIONS = {
    RolloutStep.ROLLOUT_STEP_PROMOTED: "promoted",
    RolloutStep.ROLLOUT_STEP_ROLLED_BACK: "rolled_back",
    RolloutStep.ROLLOUT_STEP_ABORTED: "aborted",
}


def bench_rollout(
    candidate: Path, family: str, mode: Mode, percent: float, frames: int, source: str,
    console: Console,
) -> dict:  # fmt: skip
    # A workdir of its own: the stack's model repository keeps what a rollout promoted.
    with tempfile.TemporaryDirectory(prefix="steadyeye-bench-rollout-") as workdir:
        return _bench(candidate, family, mode, percent, frames, source, console, Path(workdir))


def _bench(
    candidate: Path, family: str, mode: Mode, percent: float, frames: int, source: str,
    console: Console, workdir: Path,
) -> dict:  # fmt: skip
    stack = Stack(say=lambda text: console.print(f"[dim]{text}[/dim]"), fresh_redis=True,
                  workdir=workdir)  # fmt: skip
    with stack:
        name = stack.model.name
        with stack.rollouts() as rollouts:
            version = str(import_version(candidate, family, rollouts.repository / name))
            started = rollouts.start(name, version, mode, percent)
        console.print(f"rollout {started.rollout_id}: version {version} in {mode} at {percent:g}%")
        stack.use_camera({"id": CAMERA, "source": source, "pace": "fast", "max_frames": frames,
                          "loop": True})  # fmt: skip
        stack.start_service("ingest")
        stack.wait_ready("ingest")
        seen = _watch(stack, started.rollout_id, frames, console)
    decision = seen["decision"]
    return {
        "decision": DECISIONS.get(decision.step, "undecided") if decision else "undecided",
        "reason": decision.reason if decision else "no decision before the frames ran out",
        "frames_to_decision": seen["frames_to_decision"],
        "frames_lost": frames - len(seen["downstream"]),
        "downstream_versions": dict(sorted(Counter(seen["downstream"].values()).items())),
        "frames": frames,
        "mode": mode,
        "percent": percent,
        "serving_version": started.serving,
        "candidate_version": version,
        "evidence": dict(sorted(decision.evidence.items())) if decision else {},
        "failed_gates": list(decision.failed_gates) if decision else [],
        "windows_evaluated": seen["evaluated"],
    }


def _watch(stack: Stack, rollout_id: str, frames: int, console: Console) -> dict:
    """Until every frame is downstream and the rollout has ended (or the grace ran out)."""
    topics = [stack.topics.detections, stack.topics.rollouts]
    reader = TopicReader(stack.bootstrap, topics)
    downstream: dict[int, str] = {}  # frame id -> the version that answered it
    published_ms: dict[int, int] = {}  # frame id -> when inference published it
    decision: RolloutEvent | None = None
    decided_ms: int | None = None
    evaluated, progressed, last_frame_at = 0, time.monotonic(), None
    try:
        with Progress(TextColumn("frames downstream"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[step]}"), console=console) as progress:  # fmt: skip
            task = progress.add_task("frames", total=frames, step="rollout running")
            while True:
                for record in reader.records():
                    if record.topic == stack.topics.detections:
                        message = decode(record.value, record.headers, Detections)
                        if message.ref.camera_id == CAMERA:
                            downstream.setdefault(message.ref.frame_id, message.model.version)
                            published_ms.setdefault(message.ref.frame_id, record.timestamp)
                            progressed = time.monotonic()
                        continue
                    event = decode(record.value, record.headers, RolloutEvent)
                    if event.rollout_id != rollout_id:
                        continue
                    if event.step == RolloutStep.ROLLOUT_STEP_EVALUATED:
                        evaluated += 1
                    elif event.step in DECISIONS and decision is None:
                        decision, decided_ms = event, event.time.ToMilliseconds()
                        progress.update(task, step=DECISIONS[event.step])
                progress.update(task, completed=len(downstream))
                if len(downstream) >= frames:
                    last_frame_at = last_frame_at or time.monotonic()
                    if decision or time.monotonic() - last_frame_at > DECISION_GRACE_S:
                        break
                elif time.monotonic() - progressed > IDLE_TIMEOUT_S:
                    raise RuntimeError(f"the pipeline stopped at {len(downstream)} of {frames}")
    finally:
        reader.close()
    return {
        "decision": decision,
        "downstream": downstream,
        "evaluated": evaluated,
        # Frames inference had published downstream when the controller took the decision.
        "frames_to_decision": None if decided_ms is None
        else sum(ms <= decided_ms for ms in published_ms.values()),
    }  # fmt: skip
