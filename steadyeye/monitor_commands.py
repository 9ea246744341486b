"""`steadyeye monitor`: what the drift monitor sees per camera, and what an operator decides.

- status [CAMERA] [--plot FILE.png]: each camera's signals against its reference, from the
  monitor's state and history in Redis;
- pin CAMERA --recording VIDEO: learn a reference from a chosen recording (run through the
  served model, exactly as the pipeline would) and make it the camera's;
- accept CAMERA: the change the camera shows is the new normal: learn the reference again.

Pin and accept are commands the replica owning the camera applies within about a second
(services/monitor/control.py); an open episode then ends with a note saying why."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import click
import cv2
import numpy as np
import redis
from rich.console import Console
from rich.table import Table

from services.core.claimcheck import connect
from services.core.settings import RedisSettings, load
from services.monitor import control
from services.monitor.camera import CameraMonitor
from services.monitor.settings import MonitorSettings, parse_buckets
from services.monitor.signals import DETECTOR_SIGNALS, NAMES

STATE_PREFIX = "steadyeye:state:monitor:"


def _redis() -> redis.Redis:
    return connect(load(RedisSettings))


def _cameras(client: redis.Redis) -> list[str]:
    keys = client.scan_iter(match=f"{STATE_PREFIX}*", count=500)
    return sorted(k.decode()[len(STATE_PREFIX) :] for k in keys)


def _load(client: redis.Redis, camera_id: str, settings: MonitorSettings) -> CameraMonitor:
    raw = client.get(STATE_PREFIX + camera_id)
    if raw is None:
        raise click.ClickException(f"the monitor has no state for camera {camera_id!r}")
    return CameraMonitor.from_state(camera_id, settings, json.loads(raw))


@click.group()
def monitor() -> None:
    """Drift monitoring: each camera's signals against its reference; pin or re-learn it."""


@monitor.command()
@click.argument("camera", required=False)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw the camera's signals over time into this PNG.")  # fmt: skip
def status(camera: str | None, plot: Path | None) -> None:
    """Each camera's signals now against its reference (all cameras without CAMERA)."""
    console, settings, client = Console(), load(MonitorSettings), _redis()
    cameras = [camera] if camera else _cameras(client)
    if not cameras:
        raise click.ClickException("the monitor has no camera yet")
    if plot and len(cameras) != 1:
        raise click.ClickException("--plot draws one camera: name it")
    for camera_id in cameras:
        state = _load(client, camera_id, settings)
        history = control.read_history(client, camera_id)
        console.print(_summary(state, settings, history))
        if state.reference is not None:
            console.print(_table(state, history[-1] if history else None))
    if plot:
        history = control.read_history(client, cameras[0])
        if not history:
            raise click.ClickException(f"camera {cameras[0]!r} has no history yet (learning?)")
        plot_history(cameras[0], history, plot)
        console.print(f"plot: {plot}")


def _summary(state: CameraMonitor, settings: MonitorSettings, history: list) -> str:
    head = f"[bold]{state.camera_id}[/bold] frame {state.last_frame_id}"
    if state.bucket:
        head += f", time bucket {state.bucket}"
    if state.reference is None:
        return f"{head}: learning its reference, {len(state.warmup)}/{settings.warmup_frames}"
    episode = (
        f"[red]drift episode open since frame {state.episode_start}[/red]"
        if state.episode_start is not None
        else "[green]no drift[/green]"
    )
    return f"{head}: {episode}; reference {state.reference.reference_id}"


def _table(state: CameraMonitor, last: control.HistoryPoint | None) -> Table:
    ref = state.reference
    assert ref is not None
    table = Table("signal", "group", "reference", "now", "z", "CUSUM / threshold")
    for i, name in enumerate(NAMES):
        ratio = state.statistic[i] / ref.threshold[i]
        z = None if last is None else last.z[i]
        now = "" if z is None else f"{ref.centre[i] + z * ref.scale[i]:.3g}"
        colour = "red" if ratio > 1 else "yellow" if ratio > 0.5 else "default"
        table.add_row(
            name,
            "detector" if name in DETECTOR_SIGNALS else "image",
            f"{ref.centre[i]:.3g} ± {ref.scale[i]:.2g}",
            now,
            "" if z is None else f"{z:+.1f}",
            f"[{colour}]{state.statistic[i]:.0f} / {ref.threshold[i]:.0f}[/{colour}]",
        )
    return table


def plot_history(
    camera_id: str,
    history: list[control.HistoryPoint],
    path: Path,
    marks: Sequence[tuple[int, str]] = (),
) -> None:
    """Top: each signal's CUSUM statistic over its threshold (1 = alarm); bottom: z against the
    reference. Signals that came within half their threshold are named; `marks` are frames to
    draw a labelled line at (a change, alarms)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = np.array([p.frame_id for p in history])
    ratio = np.array([p.ratio for p in history])
    z = np.array([p.z for p in history])
    moved = [i for i in range(len(NAMES)) if ratio[:, i].max() > 0.5]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    for i in range(len(NAMES)):
        style = {"label": NAMES[i], "lw": 1.6} if i in moved else {"color": "0.8", "lw": 0.8}
        top.plot(frames, ratio[:, i], **style)
        bottom.plot(frames, z[:, i], **style)
    top.axhline(1.0, color="red", ls="--", lw=1)
    top.set_ylim(0, min(3.0, max(1.5, 1.05 * float(ratio.max()))))  # past 3x: no news
    for frame, label in marks:
        for axes in (top, bottom):
            axes.axvline(frame, color="black" if label == "change" else "red", lw=0.8, ls=":")
        top.annotate(label, (frame, top.get_ylim()[1]), rotation=90, va="top", fontsize=8)
    top.set_ylabel("CUSUM / threshold")
    top.set_title(f"camera {camera_id}: drift signals against the reference")
    bottom.axhspan(-4, 4, color="0.93", zorder=0)  # within the allowance: no evidence
    bottom.set_ylabel("z (reference scales)")
    bottom.set_xlabel("frame")
    if moved:
        top.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _send(client: redis.Redis, camera: str, command: dict, wait_s: float) -> None:
    console = Console(stderr=True)
    control.send_command(client, camera, command)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not client.hexists(control.COMMANDS_KEY, camera):
            console.print(f"camera {camera}: {command['command']} applied")
            return
        time.sleep(0.2)
    console.print(
        f"camera {camera}: {command['command']} is waiting for the monitor that owns the camera"
        " (it applies it when the camera's next frame arrives)"
    )


@monitor.command()
@click.argument("camera")
@click.option("--wait", "wait_s", default=30.0, show_default=True,
              help="Seconds to wait for the monitor to apply it.")  # fmt: skip
def accept(camera: str, wait_s: float) -> None:
    """Accept what CAMERA shows now as normal: its reference is learned again."""
    _send(_redis(), camera, {"command": "accept"}, wait_s)


@monitor.command()
@click.argument("camera")
@click.option("--recording", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A recording of the camera as it should look.")  # fmt: skip
@click.option("--bucket", default="", help="Its time-of-day bucket (MONITOR_TIME_BUCKETS).")
@click.option("--wait", "wait_s", default=30.0, show_default=True)
def pin(camera: str, recording: str, bucket: str, wait_s: float) -> None:
    """Make a reference learned from RECORDING the camera's (through the served model)."""
    settings = load(MonitorSettings)
    names = [name for name, *_ in parse_buckets(settings.time_buckets)]
    if bucket not in ["", *names] or (names and not bucket):
        raise click.ClickException(
            f"--bucket must be one of {names}" if names else "no time buckets are configured"
        )
    reference = learn_from_recording(camera, Path(recording), settings)
    command = {"command": "pin", "bucket": bucket, "reference": reference}
    _send(_redis(), camera, command, wait_s)


def learn_from_recording(camera: str, recording: Path, settings: MonitorSettings) -> dict:
    """The reference the monitor would learn from RECORDING's frames: preprocess's letterbox
    and frame quality, the served model's detections, the monitor's own learning."""
    import tritonclient.grpc as triton
    from rich.progress import Progress

    from services import contract as contracts
    from services.inference.one_frame import infer_image
    from services.inference.settings import InferenceSettings
    from services.inference.versions import version_for
    from services.preprocess.quality import QualityMeter
    from services.preprocess.settings import PreprocessSettings

    inference = load(InferenceSettings)
    client = triton.InferenceServerClient(inference.triton_url)
    try:
        contract = contracts.fetch(client, inference.model_name, 10)
    except Exception as exc:  # any failure to reach the model says the same
        raise click.ClickException(f"the model server at {inference.triton_url}: {exc}") from exc
    # The version serving this camera (a rollout may have loaded a candidate beside it).
    served = version_for(_redis(), client, contract.name, camera)
    capture = cv2.VideoCapture(str(recording))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    frames: list[tuple] = []
    meter, version = QualityMeter(load(PreprocessSettings).frozen_threshold), ""
    with Progress(console=Console(stderr=True)) as progress:
        task = progress.add_task(f"learning from {recording.name}", total=total)
        while True:
            ok, image = capture.read()
            if not ok:
                break
            answer = infer_image(client, contract, image, served, inference.min_score)
            version = answer.version
            height, width = image.shape[:2]
            frames.append((meter.measure(camera, answer.boxed.resized), answer.detections,
                           (width, height)))  # fmt: skip
            progress.advance(task)
    capture.release()
    client.close()
    if len(frames) < 50:
        raise click.ClickException(f"{recording}: {len(frames)} frames; a reference needs 50+")
    learner = CameraMonitor(camera, settings.model_copy(update={"warmup_frames": len(frames)}))
    for frame_id, (quality, detections, size) in enumerate(frames):
        learner.observe(frame_id, quality, version, detections, size)
    reference = learner.reference
    assert reference is not None
    reference.reference_id = f"{camera}@pinned:{recording.name}/{version}"
    return reference.to_state()
