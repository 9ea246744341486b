"""`steadyeye model validate CANDIDATE.onnx --family F --against NAME[:VERSION]|FILE.onnx`.

Exit 0: every check passed; 1: a check failed (the candidate must not ship); 2: nothing was
validated (bad arguments, policy, frames, or no Triton serving the reference)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

FAMILIES = ["yolox", "yolov5", "yolov8"]


def _class_names(path: Path | None) -> list[str] | None:
    """A YAML/JSON list, or one name per line."""
    if path is None:
        return None
    import yaml

    text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict) and "names" in data:  # a YOLO data.yaml
        names = data["names"]
        data = [names[k] for k in sorted(names)] if isinstance(names, dict) else names
    if not isinstance(data, list):
        data = [line.strip() for line in text.splitlines() if line.strip()]
    return [str(n) for n in data]


@click.command("validate")
@click.argument("candidate", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--family",
    type=click.Choice(FAMILIES),
    required=True,
    help="Output layout of the candidate export (yolov8 also covers YOLO11).",
)
@click.option(
    "--against",
    required=True,
    metavar="NAME[:VERSION]|FILE.onnx",
    help="The current model: served by the Triton at STEADYEYE_INFERENCE_TRITON_URL "
    "(else found in --repository or as the demo model), or its ONNX export.",
)
@click.option(
    "--against-family",
    type=click.Choice(FAMILIES),
    help="Family of --against FILE.onnx [default: --family].",
)
@click.option(
    "--frames",
    type=click.Path(exists=True, path_type=Path),
    help="Video or image folder like production's [default: the sample clip].",
)
@click.option(
    "--max-frames",
    default=200,
    show_default=True,
    type=click.IntRange(min=1),
    help="Use at most this many frames.",
)
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="COCO detection JSON for these frames: adds the mAP check.",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Thresholds (YAML; see examples/validate-policy.yaml) [default: built in].",
)
@click.option(
    "--class-names",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The candidate's class names (YAML/JSON list or one per line) "
    "[default: COCO's 80, as `model import`].",
)
@click.option(
    "--repository",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("model_repository"),
    show_default=True,
    help="Where `model import` wrote the current model (embedded Triton only).",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a self-contained HTML report here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON on stdout.")
def validate(
    candidate: Path,
    family: str,
    against: str,
    against_family: str | None,
    frames: Path | None,
    max_frames: int,
    labels: Path | None,
    policy_file: Path | None,
    class_names: Path | None,
    repository: Path,
    report: Path | None,
    as_json: bool,
) -> None:
    """Gate CANDIDATE.onnx against the current model: contract, latency, memory, agreement on
    the same frames (and mAP with --labels). Exit 0 pass, 1 fail, 2 usage error."""
    from services.core.errors import ConfigError
    from steadyeye.validate import PolicyError, Request, UsageError, load_policy
    from steadyeye.validate import validate as run_validation
    from steadyeye.validate.frames import FramesError
    from steadyeye.validate.report import write_report

    console = Console(stderr=True)
    try:
        request = Request(
            candidate=candidate,
            family=family,
            against=against,
            policy=load_policy(policy_file),
            frames=frames,
            labels=labels,
            max_frames=max_frames,
            class_names=_class_names(class_names),
            against_family=against_family,
            repository=repository,
        )
        result, validation = run_validation(request, lambda text: console.print(f"[dim]{text}"))
    except (UsageError, PolicyError, FramesError, ConfigError) as exc:
        click.echo(f"steadyeye: {exc}", err=True)
        sys.exit(2)
    if report is not None:
        write_report(report, result, validation)
        console.print(f"report: {report}")
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        _print(console, result)
    sys.exit(0 if result["passed"] else 1)


def _print(console: Console, result: dict) -> None:
    table = Table(
        title=f"{result['candidate']['file']} against {result['reference']['against']}"
        f" on {result['frames']['count']} frames"
    )
    table.add_column("check")
    table.add_column("result")
    table.add_column("why")
    colours = {"pass": "green", "fail": "red", "skipped": "dim"}
    for name, check in result["checks"].items():
        status = check["status"]
        table.add_row(name, f"[{colours[status]}]{status}", check["reason"])
    console.print(table)
    verdict = "[green]PASS" if result["passed"] else f"[red]FAIL: {', '.join(result['failed'])}"
    console.print(verdict)
