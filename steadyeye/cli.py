"""The `steadyeye` command."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import click
from rich.console import Console

from services.core.errors import ConfigError
from services.core.settings import load
from steadyeye.cameras_commands import cameras
from steadyeye.dataset_commands import dataset
from steadyeye.monitor_commands import monitor
from steadyeye.rollout_commands import rollout
from steadyeye.validate_commands import validate

DEMO_RULES = Path(__file__).resolve().parents[1] / "examples" / "demo-rules.yaml"


def _fail(message: str) -> None:
    click.echo(f"steadyeye: {message}", err=True)
    sys.exit(1)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log the stack's own steps.")
def main(verbose: bool) -> None:
    """Steadyeye: YOLO detection on many camera streams, on one machine or on Kubernetes."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
@click.option("--source", help="Video file, image folder or stream URL (default: sample footage).")
@click.option("--frames", default=200, show_default=True, help="Frames to run through.")
@click.option(
    "--pace",
    type=click.Choice(["realtime", "fast"]),
    default="realtime",
    show_default=True,
    help="Source's own frame rate, or as fast as it goes.",
)
@click.option(
    "--rules",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEMO_RULES if DEMO_RULES.is_file() else None,
    help="Alert rules for camera 'demo' (default: the example rules for the sample clip).",
)
@click.option(
    "--otlp-endpoint",
    help="Export every frame's trace over OTLP/gRPC (e.g. Jaeger at http://127.0.0.1:4317).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write a report in this directory (created if missing): index.html with the "
    "annotated video, latency and class plots, the alerts and the summary.",
)
def demo(
    source: str | None,
    frames: int,
    pace: str,
    rules: Path | None,
    otlp_endpoint: str | None,
    as_json: bool,
    report_dir: Path | None,
) -> None:
    """Start the embedded stack, run footage through it, print a summary and exit."""
    from steadyeye.assets import MediaSettings, media_file
    from steadyeye.demo import run_demo

    console = Console(stderr=True)
    if report_dir:  # before the stack starts: a bad path costs no run
        from steadyeye.report import ReportError, check_directory

        try:
            check_directory(report_dir)
        except ReportError as exc:
            raise click.BadParameter(str(exc), param_hint="'--report'") from exc
    if otlp_endpoint:  # the services inherit the environment and configure OpenTelemetry
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_endpoint
    try:
        source = source or str(media_file(load(MediaSettings), "vtest.avi"))
        summary = run_demo(source, frames, pace, rules, console, report_dir=report_dir)
    except (ConfigError, RuntimeError) as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        console.print_json(json.dumps(summary))
    if summary["frames_lost"] or summary["frames_detected"] < frames:
        sys.exit(2)


@main.command()
@click.option(
    "--cameras",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Cameras file (YAML) for the ingest service; without it ingest is not run.",
)
@click.option(
    "--rules",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Alert rules file (YAML) for the alert service; without it alert is not run.",
)
@click.option(
    "--webhook-url",
    envvar="STEADYEYE_WEBHOOK_URL",
    help="POST each alert there (the webhook service); without it webhook is not run.",
)
@click.option(
    "--capture",
    "capture_strategies",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Capture strategies (YAML, e.g. examples/capture-strategies.yaml) for the capture "
    "service; without it capture is not run.",
)
@click.option(
    "--dataset",
    help="Where capture writes its dataset: a directory or fsspec URL (default: "
    "STEADYEYE_STACK_WORKDIR/dataset).",
)
@click.option(
    "--fallback",
    is_flag=True,
    help="Also serve an int8 variant of the model (built once, ~5 s) as a fallback tier: "
    "frames move to it while the model breaks its latency budget or fails.",
)
@click.option(
    "--tiers",
    "tiers_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Inference's tiers file (STEADYEYE_INFERENCE_TIERS_FILE; default with --fallback: "
    "the model, then its int8 variant).",
)
@click.option(
    "--ingest-replicas",
    type=click.IntRange(min=1),
    help="Run the cameras file's cameras on this many ingest replicas sharing the cameras "
    "topic (change them live with `steadyeye cameras apply`); default: one ingest, the file's.",
)
@click.option(
    "--console",
    "with_console",
    is_flag=True,
    help="Also run the read-only web console (live annotated cameras, alerts) on 127.0.0.1.",
)
@click.option(
    "--no-prometheus",
    is_flag=True,
    help="Do not run Prometheus (by default it runs when installed: every service scraped, the "
    "shipped alert rules evaluated).",
)
def up(
    cameras: Path | None,
    rules: Path | None,
    webhook_url: str | None,
    capture_strategies: Path | None,
    dataset: str | None,
    fallback: bool,
    tiers_file: Path | None,
    ingest_replicas: int | None,
    with_console: bool,
    no_prometheus: bool,
) -> None:
    """Start broker, Triton, Redis and the services; Ctrl-C stops everything cleanly."""
    from steadyeye.embedded.stack import Stack

    console = Console(stderr=True)
    stack = Stack(
        cameras_file=cameras.resolve() if cameras else None,
        rules_file=rules.resolve() if rules else None,
        say=console.print,
        webhook_url=webhook_url,
        capture_strategies=capture_strategies.resolve() if capture_strategies else None,
        capture_dataset=dataset,
        fallback=fallback,
        tiers_file=tiers_file.resolve() if tiers_file else None,
        ingest_replicas=ingest_replicas or 0,
        prometheus=not no_prometheus,
        console=with_console,
    )
    try:
        with stack:
            port = stack.prometheus_port
            console.print(
                f"[bold green]up[/bold green]: Kafka {stack.bootstrap}, Triton "
                f"{stack.triton_grpc}, Redis {stack.redis_url}; services "
                + ", ".join(f"{n} :{p}" for n, p in stack.service_ports.items())
                + (f"; Prometheus http://127.0.0.1:{port}" if port else "")
            )
            if with_console:
                url = f"http://127.0.0.1:{stack.service_ports['console']}/"
                console.print(f"[bold]console[/bold]: {url}")
            console.print("Ctrl-C to stop")
            stop = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                # From a thread: the handler may interrupt stop.wait() while it holds the lock.
                signal.signal(signum, lambda *_: threading.Thread(target=stop.set).start())
            while not stop.wait(1.0):
                pass
            console.print("stopping...")
    except (ConfigError, RuntimeError) as exc:
        _fail(str(exc))


@main.command("console")
@click.option("--host", help="Address to listen on (default 127.0.0.1; any other needs a token).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default 8090).")
def console_command(host: str | None, port: int | None) -> None:
    """The read-only web console of a running pipeline: live annotated cameras, each camera's
    health, recent alerts with snapshots and trace links. It reads the pipeline's settings
    (STEADYEYE_KAFKA_*, STEADYEYE_REDIS_*, STEADYEYE_CLAIM_CHECK_*) and its own
    (STEADYEYE_CONSOLE_TOKEN, _TRACE_URL, _RULES_FILE); `steadyeye up --console` runs it
    against the embedded stack."""
    from services.console.__main__ import main as run_console

    for name, value in (("HTTP_HOST", host), ("HTTP_PORT", port)):
        if value is not None:
            os.environ[f"STEADYEYE_CONSOLE_{name}"] = str(value)
    run_console()


@main.group()
def model() -> None:
    """Manage served models."""


@model.command("import")
@click.argument("onnx_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--family",
    type=click.Choice(["yolox", "yolov5", "yolov8"]),
    required=True,
    help="Output layout of the export (yolov8 also covers YOLO11).",
)
@click.option("--name", required=True, help="Model name in Triton.")
@click.option(
    "--repository",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("model_repository"),
    show_default=True,
)
@click.option(
    "--target",
    type=click.Choice(["python", "onnxruntime", "tensorrt"]),
    default="python",
    show_default=True,
    help="python: embedded Triton; onnxruntime/tensorrt: NVIDIA's Triton image.",
)
@click.option(
    "--score-threshold",
    default=0.1,
    show_default=True,
    help="The lowest score the model returns; inference serves >= its MIN_SCORE (0.25).",
)
@click.option("--iou-threshold", default=0.45, show_default=True)
@click.option("--max-detections", default=100, show_default=True)
@click.option("--max-batch-size", default=8, show_default=True)
@click.option(
    "--instances",
    type=click.IntRange(min=1),
    help="Model instances run side by side [default: 2 on CPU, 1 with tensorrt].",
)
@click.option(
    "--intra-op-threads",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="onnxruntime threads per CPU instance; instances x threads ~ Triton's cores.",
)
def import_(
    onnx_file: Path,
    family: str,
    name: str,
    repository: Path,
    target: str,
    score_threshold: float,
    iou_threshold: float,
    max_detections: int,
    max_batch_size: int,
    instances: int | None,
    intra_op_threads: int,
) -> None:
    """Turn a YOLO ONNX export into a Triton model: uint8 in, final detections out."""
    from steadyeye.modelimport import ModelImportError, import_model

    try:
        path = import_model(
            onnx_file,
            family,
            repository,
            name,
            target=target,
            score_threshold=score_threshold,
            iou_threshold=iou_threshold,
            max_detections=max_detections,
            max_batch_size=max_batch_size,
            instances=instances,
            intra_op_threads=intra_op_threads,
        )
    except ModelImportError as exc:
        _fail(str(exc))
    click.echo(f"wrote {path}")


@main.group()
def bench() -> None:
    """Benchmarks: they print figures, side by side with a baseline, and assert nothing."""


@bench.command("pipeline")
@click.option("--source", help="Video file (default: the sample clip).")
@click.option("--frames", default=300, show_default=True)
@click.option("--in-flight", default=8, show_default=True, help="Concurrent Triton requests.")
@click.option(
    "--compare-monitor",
    is_flag=True,
    help="Instead: the pipeline without the drift monitor, then with it, in one run.",
)
@click.option(
    "--monitor-warmup-frames",
    type=click.IntRange(min=50),
    help="With --compare-monitor: the monitor's warm-up (default: a third of the frames).",
)
@click.option(
    "--rounds",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="With --compare-monitor: runs of each, the order alternating.",
)
@click.option(
    "--monitor-pinned",
    is_flag=True,
    help="With --compare-monitor: the monitor starts with a reference learned beforehand "
    "from the clip's first --monitor-warmup-frames: no warm-up or calibration in the runs.",
)
def bench_pipeline_command(
    source: str | None,
    frames: int,
    in_flight: int,
    compare_monitor: bool,
    monitor_warmup_frames: int | None,
    rounds: int,
    monitor_pinned: bool,
) -> None:
    """Baseline script vs model alone vs the whole pipeline, on the same frames (JSON)."""
    from steadyeye.assets import MediaSettings, media_file
    from steadyeye.bench.pipeline import bench_monitor_overhead, bench_pipeline

    console = Console(stderr=True)
    try:
        source = source or str(media_file(load(MediaSettings), "vtest.avi"))
        if compare_monitor:
            result = bench_monitor_overhead(
                source, frames, console, monitor_warmup_frames, rounds, monitor_pinned
            )
        else:
            result = bench_pipeline(source, frames, console, in_flight)
    except (ConfigError, RuntimeError) as exc:
        _fail(str(exc))
    click.echo(json.dumps(result, indent=2))


@bench.command("capture")
@click.option("--source", help="Video file, looped (default: the sample clip).")
@click.option("--frames", default=2000, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="The dataset's directory (default: a new one under STEADYEYE_STACK_WORKDIR).",
)
@click.option(
    "--strategies",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Capture strategies (default: examples/capture-strategies.yaml).",
)
@click.option(
    "--compare",
    is_flag=True,
    help="Instead: pipeline frames/s without capture and with it, in one run.",
)
@click.option("--rounds", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON.")
def bench_capture_command(
    source: str | None,
    frames: int,
    out: Path | None,
    strategies: Path | None,
    compare: bool,
    rounds: int,
    as_json: bool,
) -> None:
    """The pipeline with the capture service: frames taken per reason, the dataset (JSON)."""
    import time

    from steadyeye.assets import MediaSettings, media_file
    from steadyeye.bench.capture import bench_capture, bench_capture_overhead
    from steadyeye.embedded.stack import StackSettings

    console = Console(stderr=True, quiet=as_json)
    try:
        source = source or str(media_file(load(MediaSettings), "vtest.avi"))
        if compare:
            result = bench_capture_overhead(source, frames, console, rounds)
        else:
            out = out or load(StackSettings).workdir / f"dataset-{time.strftime('%Y%m%d-%H%M%S')}"
            result = bench_capture(source, frames, out.resolve(), strategies, console)
    except (ConfigError, RuntimeError) as exc:
        _fail(str(exc))
    click.echo(json.dumps(result, indent=None if as_json else 2))


@bench.command("kafka")
@click.option("--records", default=700, show_default=True)
@click.option("--rate", default=70.0, show_default=True, help="Records per second sent.")
def bench_kafka_command(records: int, rate: float) -> None:
    """The core loop's CPU per record with kafka-python vs librdkafka, in one run (JSON)."""
    from steadyeye.bench.kafka import bench_kafka

    console = Console(stderr=True)
    try:
        result = bench_kafka(records, rate, lambda text: console.print(f"[dim]{text}[/dim]"))
    except RuntimeError as exc:
        _fail(str(exc))
    click.echo(json.dumps(result, indent=2))


@bench.command("tracing")
@click.option("--source", help="Video file (default: the sample clip).")
@click.option("--frames", default=300, show_default=True)
def bench_tracing_command(source: str | None, frames: int) -> None:
    """Pipeline throughput with tracing off vs on at 100% sampling, in one run (JSON)."""
    from steadyeye.assets import MediaSettings, media_file
    from steadyeye.bench.pipeline import bench_tracing

    console = Console(stderr=True)
    try:
        source = source or str(media_file(load(MediaSettings), "vtest.avi"))
        result = bench_tracing(source, frames, console)
    except (ConfigError, RuntimeError) as exc:
        _fail(str(exc))
    click.echo(json.dumps(result, indent=2))


@bench.command("soak")
@click.option("--source", help="Video file, looped (default: the sample clip).")
@click.option("--minutes", default=10.0, show_default=True, type=click.FloatRange(min=0.5))
@click.option(
    "--warmup-minutes",
    default=3.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Growth is measured from the end of warm-up (the claim-check store fills to its TTL).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw every process's memory over time (PNG).",
)
def bench_soak_command(
    source: str | None, minutes: float, warmup_minutes: float, plot: Path | None
) -> None:
    """Stream continuously for M minutes: per-service RSS at start and end, frames lost (JSON)."""
    from steadyeye.assets import MediaSettings, media_file
    from steadyeye.bench.soak import bench_soak

    console = Console(stderr=True)
    try:
        source = source or str(media_file(load(MediaSettings), "vtest.avi"))
        warmup = min(warmup_minutes, minutes / 2)
        result = bench_soak(source, minutes, console, plot, warmup, DEMO_RULES)
    except (ConfigError, RuntimeError) as exc:
        _fail(str(exc))
    click.echo(json.dumps(result, indent=2))


@bench.command("webhook")
@click.option("--source", help="Video file, looped (default: the sample clip).")
@click.option("--outage-s", default=60.0, show_default=True, type=click.FloatRange(min=1))
@click.option(
    "--before-s",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Endpoint up first, for the latency baseline.",
)
def bench_webhook_command(source: str | None, outage_s: float, before_s: float) -> None:
    """Webhook endpoint down while alerts fire: alert latency per phase, deliveries (JSON)."""
    from steadyeye.assets import MediaSettings, media_file
    from steadyeye.bench.webhook import bench_webhook

    console = Console(stderr=True)
    try:
        source = source or str(media_file(load(MediaSettings), "vtest.avi"))
        result = bench_webhook(source, outage_s, before_s, console, DEMO_RULES)
    except (ConfigError, RuntimeError) as exc:
        _fail(str(exc))
    click.echo(json.dumps(result, indent=2))


@bench.command("drift")
@click.option(
    "--stream",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The video to monitor (one camera, fast pace).",
)
@click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Learn the reference from this video, played first, instead of the stream's start.",
)
@click.option("--warmup-frames", default=500, show_default=True, type=click.IntRange(min=50))
@click.option("--change-at-frame", type=click.IntRange(min=0), help="Where the stream changes.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw the camera's signals over time, the change and the alarms into this PNG.",
)
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON.")
def bench_drift_command(
    stream: Path,
    reference: Path | None,
    warmup_frames: int,
    change_at_frame: int | None,
    plot: Path | None,
    as_json: bool,
) -> None:
    """Drift episodes on a video through the pipeline: alarms, false alarms, delay (JSON)."""
    from steadyeye.bench.drift import bench_drift

    console = Console(stderr=True, quiet=as_json)
    try:
        result = bench_drift(stream, reference, warmup_frames, change_at_frame, console, plot)
    except (ConfigError, RuntimeError) as exc:
        _fail(str(exc))
    click.echo(json.dumps(result, indent=None if as_json else 2))


@bench.command("tracking")
@click.option(
    "--mot",
    "mot_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="One sequence in MOT Challenge layout (seqinfo.ini, det/det.txt, gt/gt.txt); "
    "default: the bundled MOT15 sequences and four synthetic ones, as a table.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --mot: also write our tracks in MOT results format.",
)
@click.option(
    "--synthetic",
    default=4,
    show_default=True,
    type=click.IntRange(0, 100),
    help="Synthetic sequences (seeds 0, 1, ...) beside the real ones; more than 4 is a "
    "held-out check of the tracker's defaults.",
)
@click.option(
    "--speed",
    is_flag=True,
    help="Time the trackers instead: updates per second on one core, 10 objects walking, "
    "ours beside every baseline on the same stream.",
)
def bench_tracking_command(
    mot_dir: Path | None, out: Path | None, synthetic: int, speed: bool
) -> None:
    """Our tracker vs the public baselines on the same detections: HOTA, MOTA, IDF1, ID
    switches, fps (JSON on stdout; without --mot, the table on stderr too)."""
    import tempfile

    from steadyeye.bench.tracking import bench_tracking, bench_tracking_table, table_text

    if speed:
        from steadyeye.bench.tracking_speed import ROUNDS, bench_tracking_speed

        Console(stderr=True).print(f"[dim]timing every tracker, best of {ROUNDS}, one core[/dim]")
        click.echo(json.dumps(bench_tracking_speed(), indent=2))
        return
    if mot_dir is not None:
        click.echo(json.dumps(bench_tracking(mot_dir, out), indent=2))
        return
    err = Console(stderr=True)
    with tempfile.TemporaryDirectory() as workdir:
        result = bench_tracking_table(
            Path(workdir), say=lambda line: err.print(line), synthetic=synthetic
        )
    err.print(table_text(result), highlight=False, soft_wrap=True)
    click.echo(json.dumps(result, indent=2))


@bench.command("monitor")
@click.option("--source", help="Video file, looped (default: the sample clip).")
@click.option("--cameras", default=4, show_default=True, type=click.IntRange(min=1))
@click.option("--frames", default=1000, show_default=True, help="Frames per camera.")
@click.option(
    "--warmup-frames",
    type=click.IntRange(min=50),
    help="The monitor's warm-up (default: STEADYEYE_MONITOR_WARMUP_FRAMES, 500).",
)
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON.")
def bench_monitor_command(
    source: str | None, cameras: int, frames: int, warmup_frames: int | None, as_json: bool
) -> None:
    """The drift monitor's CPU per frame and memory per camera vs the quality meter and the
    model on the same frames; state in the Redis at STEADYEYE_REDIS_URL (JSON)."""
    import redis

    from services.core.claimcheck import connect
    from services.core.settings import RedisSettings
    from steadyeye.assets import MediaSettings, media_file
    from steadyeye.bench.monitor import bench_monitor

    console = Console(stderr=True, quiet=as_json)
    try:
        source = source or str(media_file(load(MediaSettings), "vtest.avi"))
        client = connect(load(RedisSettings))
        result = bench_monitor(source, frames, cameras, console, client, warmup_frames)
    except (ConfigError, RuntimeError, redis.RedisError) as exc:
        _fail(str(exc))
    click.echo(json.dumps(result, indent=None if as_json else 2))


@bench.command("rollout")
@click.option("--candidate", required=True, type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="The export to roll out (ONNX).")  # fmt: skip
@click.option("--family", default="yolox", show_default=True, help="The export's family.")
@click.option("--mode", type=click.Choice(["shadow", "canary"]), default="shadow",
              show_default=True)  # fmt: skip
@click.option("--percent", type=click.FloatRange(0, 100), default=100.0, show_default=True,
              help="Share of frames (shadow) or of cameras (canary; one camera here).")  # fmt: skip
@click.option("--frames", default=300, show_default=True, type=click.IntRange(min=1))
@click.option("--source", help="Video file, looped (default: the sample clip).")
@click.option("--policy", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The controller's policy (default: STEADYEYE_ROLLOUT_POLICY).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON.")
def bench_rollout_command(
    candidate: Path, family: str, mode: str, percent: float, frames: int, source: str | None,
    policy: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """A candidate started live on the embedded stack: the controller's decision, frames lost,
    the versions downstream saw (JSON)."""
    import os

    from steadyeye.assets import MediaSettings, media_file
    from steadyeye.bench.rollout import bench_rollout

    console = Console(stderr=True, quiet=as_json)
    if policy is not None:
        os.environ["STEADYEYE_ROLLOUT_POLICY"] = str(policy.resolve())
    try:
        source = source or str(media_file(load(MediaSettings), "vtest.avi"))
        result = bench_rollout(candidate.resolve(), family, mode, percent, frames, source,
                               console)  # type: ignore[arg-type]  # fmt: skip
    except (ConfigError, RuntimeError, ValueError) as exc:
        _fail(str(exc))
    click.echo(json.dumps(result, indent=None if as_json else 2))


@bench.command("degrade")
@click.option("--source", help="Video file, looped (default: the sample clip).")
@click.option("--cameras", default=4, show_default=True, type=click.IntRange(min=1))
@click.option("--fps", default=5.0, show_default=True, type=click.FloatRange(min=0.5),
              help="Frames per second per camera.")  # fmt: skip
@click.option("--budget-ms", default=250.0, show_default=True, type=click.FloatRange(min=1),
              help="The primary's latency budget (the slow phase adds as much).")  # fmt: skip
@click.option("--warmup-s", default=15.0, show_default=True, type=click.FloatRange(min=0))
@click.option("--slow-s", default=20.0, show_default=True, type=click.FloatRange(min=1))
@click.option("--stopped-s", default=20.0, show_default=True, type=click.FloatRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON.")
def bench_degrade_command(
    source: str | None, cameras: int, fps: float, budget_ms: float, warmup_s: float,
    slow_s: float, stopped_s: float, as_json: bool,
) -> None:  # fmt: skip
    """Two tiers (the model and its int8 variant) on the embedded stack; the primary made slow,
    stopped, restored: how fast frames moved and came back, and none lost (JSON)."""
    from steadyeye.assets import MediaSettings, media_file
    from steadyeye.bench.degrade import Plan, bench_degrade

    console = Console(stderr=True, quiet=as_json)
    plan = Plan(cameras=cameras, fps=fps, budget_ms=budget_ms, warmup_s=warmup_s,
                slow_s=slow_s, stopped_s=stopped_s)  # fmt: skip
    try:
        result = bench_degrade(plan, source or str(media_file(load(MediaSettings), "vtest.avi")),
                               console)  # fmt: skip
    except (ConfigError, RuntimeError, ValueError) as exc:
        _fail(str(exc))
    click.echo(json.dumps(result, indent=None if as_json else 2))


@bench.command("failover")
@click.option("--cameras", default=6, show_default=True, type=click.IntRange(min=1))
@click.option("--replicas", default=2, show_default=True, type=click.IntRange(min=2))
@click.option("--source", help="Video file served as each live camera (default: the sample clip).")
@click.option("--warmup-s", default=15.0, show_default=True, type=click.FloatRange(min=0))
@click.option("--after-s", default=15.0, show_default=True, type=click.FloatRange(min=0))
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON.")
def bench_failover_command(cameras: int, replicas: int, source: str | None, warmup_s: float,
                           after_s: float, as_json: bool) -> None:  # fmt: skip
    """Ingest replicas sharing live cameras; one killed with SIGKILL: how long its cameras took
    to resume elsewhere, duplicate frame ids, frames lost (JSON)."""
    from steadyeye.assets import MediaSettings, media_file
    from steadyeye.bench.failover import bench_failover

    console = Console(stderr=True, quiet=as_json)
    try:
        video = Path(source) if source else media_file(load(MediaSettings), "vtest.avi")
        result = bench_failover(cameras, replicas, video, console, warmup_s, after_s)
    except (ConfigError, RuntimeError, ValueError) as exc:
        _fail(str(exc))
    click.echo(json.dumps(result, indent=None if as_json else 2))


@bench.command("cameras")
@click.option("--source", help="Video file served as each live camera (default: the sample clip).")
@click.option("--max-cameras", default=12, show_default=True, type=click.IntRange(min=1))
@click.option("--step-s", default=20.0, show_default=True, type=click.FloatRange(min=2),
              help="Measured window per camera count.")  # fmt: skip
@click.option("--warmup-s", default=5.0, show_default=True, type=click.FloatRange(min=0))
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON.")
def bench_cameras_command(source: str | None, max_cameras: int, step_s: float, warmup_s: float,
                          as_json: bool) -> None:  # fmt: skip
    """How many live cameras (10 fps) this node holds in real time (p99 <= 1 s, none shed):
    Steadyeye and the one-process-per-camera baseline, with the node's CPU per frame (JSON)."""
    from steadyeye.assets import MediaSettings, media_file
    from steadyeye.bench.cameras import bench_cameras

    console = Console(stderr=True, quiet=as_json)
    try:
        video = Path(source) if source else media_file(load(MediaSettings), "vtest.avi")
        result = bench_cameras(video, console, max_cameras, step_s, warmup_s)
    except (ConfigError, RuntimeError, ValueError) as exc:
        _fail(str(exc))
    click.echo(json.dumps(result, indent=None if as_json else 2))


main.add_command(cameras)
main.add_command(monitor)
main.add_command(dataset)
main.add_command(rollout)
model.add_command(validate)

if __name__ == "__main__":
    main()
