"""`steadyeye demo`: the embedded stack on sample footage, with live progress and a summary
(and with --report, a page with the annotated video and plots: steadyeye/report)."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.alert.rules.loader import RuleFileError, load_rules
from services.alert.rules.models import CameraRules
from services.core.claimcheck import open_store
from services.core.errors import ConfigError
from steadyeye.embedded.stack import Stack
from steadyeye.report import INDEX
from steadyeye.tally import Tally, TopicReader
from steadyeye.v1.alerts_pb2 import Alert, AlertState, Severity

if TYPE_CHECKING:  # the report needs the view extra; only --report imports it
    from steadyeye.report.writer import Report

CAMERA_ID = "demo"


def run_demo(
    source: str,
    frames: int,
    pace: str,
    rules: Path | None,
    console: Console,
    idle_timeout_s: float = 60.0,
    report_dir: Path | None = None,
) -> dict:
    """The run's summary; with `report_dir` (checked by steadyeye.report.check_directory) also
    the report there, its index.html in the summary's "report"."""
    camera_rules = _camera_rules(rules) if report_dir else None  # a bad file fails before start
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
        report = None
        if report_dir:
            from steadyeye.report.writer import Report

            store = open_store(stack.claim_check, stack.redis_admin)
            fps = _source_fps(source)
            report = Report(report_dir, CAMERA_ID, camera_rules, fps, store.find)
        try:
            _follow(reader, tally, topics, frames, console, idle_timeout_s, report)
            summary = tally.summary()
            summary["traces_exported"] = _traces_started(stack.service_ports["ingest"])
            summary["source"] = str(Path(source)) if "://" not in source else source
            summary["restarts"] = {n: p.restarts for n, p in stack.processes.items() if p.restarts}
            if report:
                summary["report"] = str(report.directory / INDEX)
                index = report.finish(tally, summary)
                size_mb = report.video.path.stat().st_size / 1e6
                console.print(
                    f"report: [bold]{index}[/bold] (video {report.video.frames} frames, "
                    f"{size_mb:.1f} MB; {report.busy_s:.1f} s spent writing the report)",
                    soft_wrap=True,  # the path in one piece, to copy or click
                )
        finally:
            reader.close()
            if report:
                report.close()  # after a failure too: no ffmpeg left running
    return summary


def _camera_rules(rules: Path | None) -> CameraRules | None:
    """The demo camera's rules, for the report to draw its zones and lines."""
    if rules is None:
        return None
    try:
        return load_rules(rules).cameras.get(CAMERA_ID)
    except RuleFileError as exc:
        raise ConfigError(str(exc)) from exc


def _source_fps(source: str) -> float:
    """The rate the report's video plays at: a file's own, as ingest paces it, else 10."""
    if Path(source).is_file():
        capture = cv2.VideoCapture(source)
        fps = capture.get(cv2.CAP_PROP_FPS)
        capture.release()
        if 1 <= fps <= 120:  # 0 or nonsense when the container does not say
            return fps
    return 10.0


def _follow(
    reader: TopicReader,
    tally: Tally,
    topics: dict[str, str],
    frames: int,
    console: Console,
    idle_timeout_s: float,
    report: Report | None = None,
) -> None:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[line]}"),
        TimeElapsedColumn(),
    )

    def on_alert(alert: Alert) -> None:
        _print_alert(progress, alert)
        if report:
            report.on_alert(alert)

    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("detected", total=frames, line="")
        video = progress.add_task("report: video", total=frames, line="", visible=bool(report))
        last_change = time.monotonic()
        while len(tally.detected) < frames or len(tally.tracked) < frames:
            if reader.poll_into(tally, topics, on_alert, report.on_message if report else None):
                last_change = time.monotonic()
            elif time.monotonic() - last_change > idle_timeout_s:
                console.print(f"[red]no progress for {idle_timeout_s:.0f}s; stopping[/red]")
                break
            progress.update(
                task,
                completed=len(tally.detected),
                line=f"ingested {len(tally.ingested)}  {tally.fps:.1f} fps  "
                f"p50 {tally.percentiles()['p50']:.0f} ms  dead-lettered {tally.deadlettered}",
            )
            if report:
                progress.update(video, completed=report.video.frames)
        if report:
            report.flush()  # the frames held back for late alerts
            progress.update(video, completed=report.video.frames)


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
