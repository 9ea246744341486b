"""`steadyeye bench soak`: the whole embedded stack streaming continuously for M minutes.

Every process's resident memory is sampled throughout; the figures compare the end with the
level after warm-up (start-up allocations, caches and the model's arena are not growth). At the
end ingest stops, the pipeline drains, and every ingested frame must have reached detections.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import psutil
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from steadyeye.embedded.stack import Stack
from steadyeye.tally import Tally, TopicReader

CAMERA = "demo"  # the camera the example rules are written for: the alert service works too
SAMPLE_EVERY_S = 5.0
DRAIN_TIMEOUT_S = 120.0


def _rss_mb(process: psutil.Process) -> float:
    """Process plus its children (Triton's Python-backend stub holds the model)."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / 2**20


def _shm_payloads_mb(stack: Stack) -> dict[str, float]:
    """The shared-memory claim-check store lives in tmpfs, in no process's RSS."""
    if stack.shm_dir is None:
        return {}
    total = 0
    for entry in os.scandir(stack.shm_dir):
        with contextlib.suppress(FileNotFoundError):  # deleted while we look
            total += entry.stat().st_size
    return {"payloads (shm)": total / 2**20}


def bench_soak(
    source: str,
    minutes: float,
    console: Console,
    plot: Path | None,
    warmup_minutes: float,
    rules: Path | None,
) -> dict:
    stack = Stack(
        rules_file=rules, say=lambda text: console.print(f"[dim]{text}[/dim]"), fresh_redis=True
    )
    stack.use_camera({"id": CAMERA, "source": source, "pace": "realtime", "loop": True})
    tally = Tally(CAMERA)
    samples: list[tuple[float, dict[str, float]]] = []
    with stack:
        names = ("frames", "detections", "tracks", "alerts", "deadletter")
        topics = {name: getattr(stack.topics, name) for name in names}
        reader = TopicReader(stack.bootstrap, list(topics.values()))
        try:
            processes = {name: psutil.Process(p.pid) for name, p in stack.processes.items()}
            started = time.monotonic()
            end = started + minutes * 60
            next_sample = started
            with Progress(
                TextColumn("soak"),
                BarColumn(),
                TextColumn("{task.fields[status]}"),
                TimeRemainingColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("soak", total=minutes * 60, status="")
                while (now := time.monotonic()) < end:
                    reader.poll_into(tally, topics, lambda _alert: None)
                    if now >= next_sample:
                        next_sample = now + SAMPLE_EVERY_S
                        rss = {n: _rss_mb(p) for n, p in processes.items()}
                        samples.append((now - started, {**rss, **_shm_payloads_mb(stack)}))
                    status = f"{len(tally.ingested)} in, {len(tally.detected)} detected"
                    progress.update(task, completed=now - started, status=status)
            console.print("soak: stopping ingest and draining ...")
            stack.stop_service("ingest")
            processes.pop("ingest", None)
            drain_until = time.monotonic() + DRAIN_TIMEOUT_S
            idle_since = time.monotonic()
            while time.monotonic() < drain_until and time.monotonic() - idle_since < 10:
                if reader.poll_into(tally, topics, lambda _alert: None):
                    idle_since = time.monotonic()
                if tally.ingested and tally.ingested <= tally.detected:
                    break
        finally:
            reader.close()
        restarts = {n: p.restarts for n, p in stack.processes.items() if p.restarts}
    result = _summarise(samples, warmup_minutes * 60, tally)
    result.update(minutes=minutes, warmup_minutes=warmup_minutes, restarts=restarts)
    if plot is not None:
        _plot(samples, warmup_minutes * 60, plot)
        result["plot"] = str(plot)
    return result


def _summarise(
    samples: list[tuple[float, dict[str, float]]], warmup_s: float, tally: Tally
) -> dict:
    after_warmup = [s for t, s in samples if t >= warmup_s] or [s for _, s in samples]
    first, last = after_warmup[0], after_warmup[-1]
    middle = after_warmup[len(after_warmup) // 2]
    rss = {
        name: {
            "start_mb": round(first[name], 1),
            "end_mb": round(last[name], 1),
            "peak_mb": round(max(s.get(name, 0.0) for s in after_warmup), 1),
            "growth_pct": _growth(first[name], last[name]),
            # A one-off step (an allocator arena sized for a larger batch) shows in growth_pct
            # but not here; a leak shows in both.
            "second_half_growth_pct": _growth(middle.get(name, 0.0), last[name]),
        }
        for name in first
        if name in last and first[name] > 0
    }
    summary = tally.summary()
    return {
        "frames_ingested": summary["frames_ingested"],
        "frames_detected": summary["frames_detected"],
        "frames_lost": summary["frames_lost"],
        "duplicates": summary["duplicates"],
        "fps": summary["fps"],
        "latency_ms": summary["latency_ms"],
        "alerts_by_rule": summary["alerts_by_rule"],
        "rss": rss,
        "max_growth_pct": max((v["growth_pct"] for v in rss.values()), default=0.0),
    }


def _growth(start: float, end: float) -> float:
    return round(100 * (end - start) / start, 2) if start > 0 else 0.0


def _plot(samples: list[tuple[float, dict[str, float]]], warmup_s: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({name for _, s in samples for name in s})
    fig, ax = plt.subplots(figsize=(10, 5))
    for name in names:
        points = [(t / 60, s[name]) for t, s in samples if name in s]
        ax.plot([p[0] for p in points], [p[1] for p in points], label=name)
    ax.axvline(warmup_s / 60, color="grey", linestyle="--", label="end of warm-up")
    ax.set(xlabel="minutes", ylabel="RSS (MiB)", yscale="log", title="Steadyeye soak: memory")
    ax.legend(loc="upper left", fontsize="small", ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
