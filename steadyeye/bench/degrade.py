"""`steadyeye bench degrade`: the embedded stack with two tiers, a fault injected on the
primary, and what downstream saw.

The stack serves the model and its int8 variant from one Triton; inference reaches the primary
through a fault proxy in this process (steadyeye/bench/faultproxy.py) and the fallback directly
(docs/design/degradation.md §3, §4.9). Cameras play the sample clip live (looped, at `fps`).
After a warm-up the primary is made slow past its budget, then stopped, then restored until it
has every camera back. Ingest is then stopped and every frame it sent is waited for downstream.
Timings come from the ServingEvents inference published (steadyeye.serving.v1); frames from the
frames, detections and dead-letter topics.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn

from services.core.messages import decode
from services.inference.router import REASON_LABELS, REASONS
from steadyeye.bench.faultproxy import FaultProxy
from steadyeye.embedded.stack import Stack
from steadyeye.tally import TopicReader
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.frames_pb2 import Frame, ReadyFrame
from steadyeye.v1.serving_pb2 import ServingEvent, ServingStep

CAMERA_PREFIX = "degrade-"
STEPS = {
    value: ServingStep.Name(value).removeprefix("SERVING_STEP_").lower()
    for value in ServingStep.values()
}
REASON_NAMES = {value: REASON_LABELS[fault] for fault, value in REASONS.items()}
DRAIN_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Plan:
    cameras: int = 4
    fps: float = 5.0
    budget_ms: float = 250.0
    warmup_s: float = 15.0
    slow_s: float = 20.0
    stopped_s: float = 20.0
    # After the restore: until every camera is back on the primary, then `settle_s` more (flaps
    # show there), at most `restored_max_s`.
    restored_max_s: float = 60.0
    settle_s: float = 10.0


@dataclass
class _Seen:
    """What the topics said so far."""

    sent: set[tuple[str, int]] = field(default_factory=set)
    answered: dict[tuple[str, int], Detections] = field(default_factory=dict)
    answers: int = 0
    dead: set[tuple[str, int]] = field(default_factory=set)
    events: list[ServingEvent] = field(default_factory=list)
    latency_ms: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # phase, tier


def bench_degrade(plan: Plan, source: str, console: Console) -> dict:
    with tempfile.TemporaryDirectory(prefix="steadyeye-bench-degrade-") as workdir:
        return _bench(plan, source, console, Path(workdir))


def _bench(plan: Plan, source: str, console: Console, workdir: Path) -> dict:
    stack = Stack(
        say=lambda text: console.print(f"[dim]{text}[/dim]"),
        fresh_redis=True,
        workdir=workdir,
        monitor=False,
        fallback=True,
    )
    total_s = plan.warmup_s + plan.slow_s + plan.stopped_s + plan.restored_max_s
    with FaultProxy(stack.triton_ports["grpc"], max_s=total_s + 600) as proxy:
        stack.write_tiers(primary_url=proxy.address, budget_ms=plan.budget_ms)
        with stack:
            cameras = [
                {
                    "id": f"{CAMERA_PREFIX}{i}",
                    "source": source,
                    "pace": "realtime",
                    "fps": plan.fps,
                    "loop": True,
                }
                for i in range(plan.cameras)
            ]
            stack.cameras_file = workdir / "cameras.yaml"
            stack.cameras_file.write_text(yaml.safe_dump({"cameras": cameras}))
            stack.start_service("ingest")
            stack.wait_ready("ingest")
            return _run(plan, stack, proxy, console)


def _run(plan: Plan, stack: Stack, proxy: FaultProxy, console: Console) -> dict:
    topics = stack.topics
    reader = TopicReader(
        stack.bootstrap, [topics.frames, topics.detections, topics.deadletter, topics.serving]
    )
    seen, marks = _Seen(), {}
    phase = ["warmup"]
    try:
        with Progress(
            TextColumn("[bold]{task.fields[phase]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[counts]}"),
            console=console,
        ) as progress:
            task = progress.add_task("degrade", phase="warm-up", counts="")

            def wait(seconds: float, until: Callable[[], bool] = lambda: False) -> None:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline and not until():
                    _read(reader, stack, seen, phase[0])
                    tiers = Counter(d.tier for d in seen.answered.values())
                    progress.update(
                        task,
                        phase=phase[0],
                        counts=f"sent {len(seen.sent)}, "
                        f"answered {dict(tiers)}, events {len(seen.events)}",
                    )

            def enter(name: str) -> None:
                phase[0] = name
                marks[name] = time.time()

            wait(plan.warmup_s)
            enter("slow")
            proxy.set("delay", plan.budget_ms / 1000, dirs=("up",))
            wait(plan.slow_s)
            enter("stopped")
            proxy.set("refuse")
            wait(plan.stopped_s)
            marks["readyz"] = _readyz(stack.service_ports["inference"])
            enter("restored")
            proxy.set("pass")
            wait(plan.restored_max_s, lambda: _recovered_at(seen, marks["restored"]) is not None)
            wait(plan.settle_s)
            enter("drain")
            stack.stop_service("ingest")  # SIGTERM: every frame it read is on the frames topic
            wait(DRAIN_TIMEOUT_S, lambda: seen.sent <= set(seen.answered) | seen.dead)
    finally:
        reader.close()
    return _result(plan, seen, marks)


def _read(reader: TopicReader, stack: Stack, seen: _Seen, phase: str) -> None:
    topics = stack.topics
    for record in reader.records():
        if record.topic == topics.serving:
            seen.events.append(decode(record.value, record.headers, ServingEvent))
            continue
        if not (record.key or b"").startswith(CAMERA_PREFIX.encode()):
            continue
        if record.topic == topics.frames:
            ref = decode(record.value, record.headers, Frame).ref
            seen.sent.add((ref.camera_id, ref.frame_id))
        elif record.topic == topics.detections:
            message = decode(record.value, record.headers, Detections)
            key = (message.ref.camera_id, message.ref.frame_id)
            seen.answers += 1
            seen.answered.setdefault(key, message)
            ms = record.timestamp - message.ref.capture_time.ToMilliseconds()
            seen.latency_ms.setdefault((phase, message.tier), []).append(ms)
        else:  # a dead letter: the record of the hop that gave up on it
            source = dict(record.headers or ()).get("x-deadletter-source", b"").decode()
            kind = Frame if source.startswith(topics.frames) else ReadyFrame
            ref = decode(record.value, record.headers, kind).ref
            seen.dead.add((ref.camera_id, ref.frame_id))


def _readyz(port: int) -> tuple[int, str]:
    """Inference's /readyz: still ready while a fallback serves, with a note saying so."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _recovered_at(seen: _Seen, after: float) -> float | None:
    for event in seen.events:
        at = event.time.ToMilliseconds() / 1000
        if event.step == ServingStep.SERVING_STEP_RECOVERED and at >= after:
            return at
    return None


def _first(seen: _Seen, step: int, after: float, reason: int | None = None) -> float | None:
    for event in seen.events:
        at = event.time.ToMilliseconds() / 1000
        if event.step == step and at >= after and reason in (None, event.reason):
            return at
    return None


def _since(at: float | None, start: float | None) -> float | None:
    return None if at is None or start is None else round(at - start, 2)


def _result(plan: Plan, seen: _Seen, marks: dict) -> dict:
    unavailable = REASONS["unavailable"]
    degraded = _first(seen, ServingStep.SERVING_STEP_DEGRADED, marks["slow"])
    # Slow, then stopped: the reason changes (or the tier is left again, if it had come back).
    stopped = min(
        (
            t
            for t in (
                _first(
                    seen, ServingStep.SERVING_STEP_REASON_CHANGED, marks["stopped"], unavailable
                ),
                _first(seen, ServingStep.SERVING_STEP_DEGRADED, marks["stopped"], unavailable),
            )
            if t is not None
        ),
        default=None,
    )
    recovered = _recovered_at(seen, marks["restored"])
    after_recovery = [
        e
        for e in seen.events
        if recovered is not None
        and e.step == ServingStep.SERVING_STEP_DEGRADED
        and e.time.ToMilliseconds() / 1000 > recovered
    ]
    answered = seen.answered.values()
    return {
        "to_fallback_s": _since(degraded, marks["slow"]),
        "back_to_primary_s": _since(recovered, marks["restored"]),
        "frames_lost": len(seen.sent - set(seen.answered) - seen.dead),
        "frames_degraded": sum(d.degraded for d in answered),
        "frames_by_tier": dict(sorted(Counter(d.tier for d in answered).items())),
        "stopped_to_unavailable_s": _since(stopped, marks["stopped"]),
        # The first cameras back (the ramp's first step); back_to_primary_s: the last ones.
        "ramp_started_s": _since(
            _first(seen, ServingStep.SERVING_STEP_RAMPING, marks["restored"]), marks["restored"]
        ),
        "frames_sent": len(seen.sent),
        "frames_dead_lettered": len(seen.dead),
        "frames_answered_twice": seen.answers - len(seen.answered),
        "degraded_by_reason": dict(
            sorted(
                Counter(
                    REASON_NAMES.get(d.degraded_reason, "") for d in answered if d.degraded
                ).items()
            )
        ),
        "flaps": len(after_recovery),
        "readyz_while_stopped": {"status": marks["readyz"][0], "body": marks["readyz"][1]},
        "budget_ms": plan.budget_ms,
        "phases_s": {"warmup": plan.warmup_s, "slow": plan.slow_s, "stopped": plan.stopped_s},
        "cameras": plan.cameras,
        "fps_per_camera": plan.fps,
        "events": [
            {
                "step": STEPS[e.step],
                "from": e.from_tier,
                "to": e.to_tier,
                "reason": REASON_NAMES.get(e.reason, ""),
                "primary_share": e.primary_share,
                "at_s": _since(e.time.ToMilliseconds() / 1000, marks["slow"]),
            }
            for e in seen.events
        ],
        # End to end (capture to detections published), by phase and by the tier that answered.
        "latency_ms": {
            f"{phase}/{tier or 'primary'}": {
                "frames": len(values),
                "p50": round(statistics.median(values)),
                "p95": round(sorted(values)[int(0.95 * (len(values) - 1))]),
            }
            for (phase, tier), values in sorted(seen.latency_ms.items())
        },
    }
