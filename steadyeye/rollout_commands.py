"""`steadyeye rollout`: a candidate version of a model beside the serving one, on live traffic.

- start MODEL --candidate VERSION|FILE.onnx --mode shadow|canary [--percent P] [--manual]:
  load the candidate in Triton (a file is imported as the model's next version first), then
  tell every inference replica through the rollout state in Redis; the rollout controller
  judges it on live evidence and promotes or rolls it back (--manual: it only reports);
- status [MODEL]: the state, the controller's current window, the versions Triton serves, what
  each replica uses;
- promote [MODEL]: the candidate serves every camera; the old version is unloaded once every
  replica has switched;
- abort [MODEL] --reason TEXT: the candidate is unloaded; serving never changed.

Each step is a RolloutEvent on steadyeye.rollouts.v1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

import click

from services.core.claimcheck import connect
from services.core.errors import ConfigError
from services.core.settings import RedisSettings, load
from services.rollout import events
from services.rollout import state as rollout_state
from services.rollout import window as windows
from services.rollout.control import RolloutError, Rollouts
from services.rollout.settings import RolloutSettings
from services.rollout.tritons import TritonsError, tritons_for
from steadyeye.rollout.candidate import import_version

T = TypeVar("T")


def _rollouts() -> tuple[Rollouts, str]:
    try:
        settings = load(RolloutSettings)
        redis_client = connect(load(RedisSettings))
        tritons = tritons_for(settings)
    except (ConfigError, TritonsError) as exc:
        raise click.ClickException(str(exc)) from None
    rollouts = Rollouts(
        redis_client, tritons, settings.repository, events.publish_once, settings.wait_s
    )
    return rollouts, settings.model_name


def _step(action: Callable[..., T], *args: object) -> T:
    try:
        return action(*args)
    except (RolloutError, TritonsError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def rollout() -> None:
    """Shadow or canary a candidate version on live traffic; promote or abort it."""


@rollout.command()
@click.argument("model", required=False)
@click.option(
    "--candidate",
    required=True,
    help="A version in the repository, or an ONNX export to import as the next one.",
)
@click.option("--family", default="yolox", show_default=True, help="The export's family.")
@click.option("--mode", type=click.Choice(["shadow", "canary"]), required=True)
@click.option("--percent", type=click.FloatRange(0, 100), default=10.0, show_default=True,
              help="Share of frames (shadow) or of cameras (canary).")  # fmt: skip
@click.option("--compare-percent", type=click.FloatRange(0, 100), default=10.0,
              show_default=True,
              help="Canary: share of the candidate's frames the serving version answers too, "
              "for the controller to compare.")  # fmt: skip
@click.option("--manual", is_flag=True,
              help="The controller only reports its verdicts; an operator decides.")  # fmt: skip
def start(
    model: str | None, candidate: str, family: str, mode: str, percent: float,
    compare_percent: float, manual: bool,
) -> None:  # fmt: skip
    """Load the candidate beside the serving version and start the rollout."""
    rollouts, default_model = _rollouts()
    model = model or default_model
    if not candidate.isdigit():
        source = Path(candidate)
        if not source.is_file():
            raise click.ClickException(f"--candidate {candidate}: neither a version nor a file")
        try:
            candidate = str(import_version(source, family, rollouts.repository / model))
        except (ValueError, OSError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"imported {source} as version {candidate} of {model}")
    started = _step(rollouts.start, model, candidate, mode, percent, compare_percent, not manual)
    click.echo(f"rollout {started.rollout_id}: {model} version {candidate} in {mode} at "
               f"{percent:g}%, version {started.serving} serving"
               f"{' (manual: the controller only reports)' if manual else ''}")  # fmt: skip


@rollout.command()
@click.argument("model", required=False)
def status(model: str | None) -> None:
    """The rollout state, the controller's window, the versions Triton serves, the replicas'."""
    rollouts, default_model = _rollouts()
    model = model or default_model
    window = windows.load(rollouts.redis, model)
    report = {
        **asdict(rollouts.current(model)),
        "window": None if window is None else {
            "number": window.number,
            "frames_compared": window.agreement.frames,
            "box_f1": window.agreement.boxes.f1,
            "class_f1": window.agreement.classes.f1,
            "detections_ratio": window.agreement.detections_ratio,
            "drift_events": window.drift_events,
        },
        "triton_ready_versions": _step(rollouts.ready_versions, model),
        "replicas": rollout_state.replicas(rollouts.redis, model),
    }  # fmt: skip
    click.echo(json.dumps(report, indent=2))


@rollout.command()
@click.argument("model", required=False)
@click.option("--reason", default="promoted by an operator", show_default=True)
def promote(model: str | None, reason: str) -> None:
    """The candidate serves every camera; the old version is unloaded."""
    _end(model, "promote", reason)


@rollout.command()
@click.argument("model", required=False)
@click.option("--reason", default="aborted by an operator", show_default=True)
def abort(model: str | None, reason: str) -> None:
    """Stop the rollout and unload the candidate; the serving version stays."""
    _end(model, "abort", reason)


def _end(model: str | None, step: str, reason: str) -> None:
    rollouts, default_model = _rollouts()
    model = model or default_model
    ended = _step(rollouts.promote if step == "promote" else rollouts.abort, model, reason)
    click.echo(f"rollout {ended.rollout_id} {ended.state}: {model} version {ended.serving} "
               f"serving; version {ended.retired} unloaded")  # fmt: skip
