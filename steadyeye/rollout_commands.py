"""`steadyeye rollout`: a candidate version of a model beside the serving one, on live traffic.

- start MODEL --candidate VERSION|FILE.onnx --mode shadow|canary [--percent P]: load the
  candidate in Triton (a file is imported as the model's next version first), then tell every
  inference replica through the rollout state in Redis;
- status [MODEL]: the state, the versions Triton serves, what each replica uses;
- promote [MODEL]: the candidate serves every camera; the old version is unloaded once every
  replica has switched;
- abort [MODEL] --reason TEXT: the candidate is unloaded; serving never changed.

Each step is a RolloutEvent on steadyeye.rollouts.v1.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
import tritonclient.grpc as triton
from pydantic import Field

from services.core.claimcheck import connect
from services.core.settings import Group, RedisSettings, group, load
from services.inference.settings import InferenceSettings
from services.rollout import state as rollout_state
from steadyeye.rollout import events
from steadyeye.rollout.control import RolloutError, Rollouts
from steadyeye.rollout.repository import import_version


class RolloutSettings(Group):
    model_config = group("ROLLOUT")

    # The Triton model repository on disk (the embedded stack's; `model import`'s default).
    repository: Path = Path("model_repository")
    # How long a step waits for Triton and for every inference replica.
    wait_s: float = Field(60.0, gt=0)


def _rollouts() -> Rollouts:
    settings = load(RolloutSettings)
    client = triton.InferenceServerClient(load(InferenceSettings).triton_url)
    return Rollouts(connect(load(RedisSettings)), client, settings.repository, settings.wait_s)


def _model(model: str | None) -> str:
    return model or load(InferenceSettings).model_name


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
def start(model: str | None, candidate: str, family: str, mode: str, percent: float) -> None:
    """Load the candidate beside the serving version and start the rollout."""
    model, rollouts = _model(model), _rollouts()
    if not candidate.isdigit():
        source = Path(candidate)
        if not source.is_file():
            raise click.ClickException(f"--candidate {candidate}: neither a version nor a file")
        try:
            candidate = str(import_version(source, family, rollouts.repository / model))
        except (ValueError, OSError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"imported {source} as version {candidate} of {model}")
    try:
        started = rollouts.start(model, candidate, mode, percent)  # type: ignore[arg-type]
    except RolloutError as exc:
        raise click.ClickException(str(exc)) from None
    events.publish(events.event("started", started))
    click.echo(f"rollout {started.rollout_id}: {model} version {candidate} in {mode} at "
               f"{percent:g}%, version {started.serving} serving")  # fmt: skip


@rollout.command()
@click.argument("model", required=False)
def status(model: str | None) -> None:
    """The rollout state, the versions Triton serves and each inference replica's."""
    model, rollouts = _model(model), _rollouts()
    report = {
        **asdict(rollouts.current(model)),
        "triton_ready_versions": rollouts.ready_versions(model),
        "replicas": rollout_state.replicas(rollouts.redis, model),
    }
    click.echo(json.dumps(report, indent=2))


@rollout.command()
@click.argument("model", required=False)
@click.option("--reason", default="promoted by an operator", show_default=True)
def promote(model: str | None, reason: str) -> None:
    """The candidate serves every camera; the old version is unloaded."""
    model, rollouts = _model(model), _rollouts()
    try:
        before, after = rollouts.promote(model, reason)
    except RolloutError as exc:
        raise click.ClickException(str(exc)) from None
    events.publish(events.event("promoted", before, reason))
    click.echo(f"{model} version {after.serving} serving; version {before.serving} unloaded")


@rollout.command()
@click.argument("model", required=False)
@click.option("--reason", default="aborted by an operator", show_default=True)
def abort(model: str | None, reason: str) -> None:
    """Stop the rollout and unload the candidate; the serving version stays."""
    model, rollouts = _model(model), _rollouts()
    try:
        before, after = rollouts.abort(model, reason)
    except RolloutError as exc:
        raise click.ClickException(str(exc)) from None
    events.publish(events.event("aborted", before, reason))
    click.echo(f"rollout {before.rollout_id} aborted; {model} version {after.serving} serving")
