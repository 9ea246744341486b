"""`steadyeye demo`: the embedded stack on sample footage, with live progress and a summary."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from steadyeye.embedded.stack import Stack
from steadyeye.tally import Tally, TopicReader
from steadyeye.v1.alerts_pb2 import Alert, AlertState, Severity

CAMERA_ID = "demo"


def run_demo(
    source: str,
    frames: int,
    pace: str,
    rules: Path | None,
    console: Console,
    idle_timeout_s: float = 60.0,
) -> dict:
    # A fresh Redis: the demo's camera and frame ids repeat from run to run, so tracker and
    # alert state (and alert dedupe keys) of an earlier run must not carry over.
    stack = Stack(
        rules_file=rules, say=lambda text: console.print(f"[dim]{text}[/dim]"), fresh_redis=True
    )
    stack.use_camera({"id": CAMERA_ID, "source": source, "pace": pace, "max_frames": frames})
    with stack:
        names = ("frames", "detections", "tracks", "alerts", "deadletter")
        topics = {name: getattr(stack.topics, name) for name in names}
        tally = Tally(CAMERA_ID)
        reader = TopicReader(stack.bootstrap, list(topics.values()))
        try:
            _follow(reader, tally, topics, frames, console, idle_timeout_s)
        finally:
            reader.close()
        summary = tally.summary()
        summary["traces_exported"] = _traces_started(stack.service_ports["ingest"])
        summary["source"] = str(Path(source)) if "://" not in source else source
        summary["restarts"] = {n: p.restarts for n, p in stack.processes.items() if p.restarts}
    return summary


def _follow(
    reader: TopicReader,
    tally: Tally,
    topics: dict[str, str],
    frames: int,
    console: Console,
    idle_timeout_s: float,
) -> None:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "ingested {task.fields[ingested]}  {task.fields[fps]:.1f} fps  "
            "p50 {task.fields[p50]:.0f} ms  dead-lettered {task.fields[dlq]}"
        ),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("detected", total=frames, ingested=0, fps=0.0, p50=0.0, dlq=0)
        last_change = time.monotonic()
        while len(tally.detected) < frames or len(tally.tracked) < frames:
            if reader.poll_into(tally, topics, lambda alert: _print_alert(progress, alert)):
                last_change = time.monotonic()
            elif time.monotonic() - last_change > idle_timeout_s:
                console.print(f"[red]no progress for {idle_timeout_s:.0f}s; stopping[/red]")
                break
            progress.update(
                task,
                completed=len(tally.detected),
                ingested=len(tally.ingested),
                fps=tally.fps,
                p50=tally.percentiles()["p50"],
                dlq=tally.deadlettered,
            )


def _print_alert(progress: Progress, alert: Alert) -> None:
    severity = Severity.Name(alert.severity).removeprefix("SEVERITY_").lower()
    tracks = ",".join(map(str, alert.track_ids)) or "-"
    what = "resolved" if alert.state == AlertState.ALERT_STATE_RESOLVED else "alert"
    progress.console.print(
        f"[yellow]{what}[/yellow] {alert.rule_id} ({severity}) frame {alert.ref.frame_id} "
        f"tracks {tracks}: {alert.message}"
    )


def _traces_started(ingest_port: int) -> int:
    """Frames whose trace ingest sampled and handed to the OTLP exporter (0: tracing off)."""
    url = f"http://127.0.0.1:{ingest_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        for family in text_string_to_metric_families(response.read().decode()):
            if family.name == "steadyeye_traces_started":
                return int(
                    sum(sample.value for sample in family.samples if sample.name.endswith("_total"))
                )
    return 0
