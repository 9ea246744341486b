"""`steadyeye dataset`: what the capture service collected, and copies of it for labelling.

- stats DIR [--json]: images per reason, camera and day, boxes per class;
- export DIR --format yolo|coco|labelstudio --out OUT [--since ISO] [--camera ID]...
  [--reason R]...: the selected frames copied into OUT in one layout, in one annotation file.

DIR and OUT are directories or fsspec URLs (s3://, gs:// with s3fs or gcsfs installed)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from services.capture.dataset import query
from services.capture.dataset.record import DatasetError
from services.capture.dataset.store import Store


class _Since(click.ParamType):
    name = "ISO-DATE"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return query.parse_since(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO date or date-time (2024-05-01, 2024-05-01T12:00)")


def _selection(
    since: datetime | None, cameras: tuple[str, ...], reasons: tuple[str, ...]
) -> query.Selection:
    return query.Selection(since=since, cameras=frozenset(cameras), reasons=frozenset(reasons))


_since = click.option("--since", type=_Since(), help="Only frames captured at or after this.")
_camera = click.option("--camera", "cameras", multiple=True, help="Only this camera (repeatable).")
_reason = click.option("--reason", "reasons", multiple=True, help="Only this reason (repeatable).")


@click.group()
def dataset() -> None:
    """Frames captured for retraining: counts, and copies in one labelling layout."""


@dataset.command()
@click.argument("directory", metavar="DIR")
@_since
@_camera
@_reason
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON on stdout.")
def stats(
    directory: str,
    since: datetime | None,
    cameras: tuple[str, ...],
    reasons: tuple[str, ...],
    as_json: bool,
) -> None:
    """Images per reason, camera and day, and served boxes per class."""
    try:
        counts = query.stats(Store(directory), _selection(since, cameras, reasons))
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(counts.as_dict(), indent=2, ensure_ascii=False))
        return
    console = Console()
    console.print(
        f"{counts.images} images, {counts.boxes} boxes "
        f"({counts.candidates} below the serving threshold) in {directory}",
        markup=False,
        highlight=False,
    )
    for title, counter in (("reason", counts.by_reason), ("camera", counts.by_camera),
                           ("class", counts.by_class), ("day", counts.by_day)):  # fmt: skip
        if counter:
            console.print(_table(title, counter, "boxes" if title == "class" else "images"))


def _table(title: str, counter: Counter[str], unit: str) -> Table:
    table = Table(title=f"by {title}", title_justify="left")
    table.add_column(title)
    table.add_column(unit, justify="right")
    for key, count in query.summary_rows(counter, by_key=title == "day"):
        table.add_row(Text(key), str(count))  # Text: a camera id is data, never markup
    return table


@dataset.command()
@click.argument("directory", metavar="DIR")
@click.option("--format", "fmt", type=click.Choice(query.FORMATS), required=True, help="Layout.")
@click.option("--out", required=True, help="Where to write the copy (a new or empty folder).")
@_since
@_camera
@_reason
def export(
    directory: str,
    fmt: str,
    out: str,
    since: datetime | None,
    cameras: tuple[str, ...],
    reasons: tuple[str, ...],
) -> None:
    """Copy the selected frames into OUT in one layout.

    yolo: images/, labels/, data.yaml; coco: images/, annotations.json; labelstudio:
    images/, tasks.json, label_config.xml (serve OUT as Label Studio's local files root)."""
    source, target = Store(directory), Store(out)
    if target.fs.exists(target.root) and target.fs.ls(target.root):
        raise click.ClickException(f"{out} is not empty: export into a new folder")
    try:
        count = query.export(source, target, fmt, _selection(since, cameras, reasons))
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"exported {count} images to {out} ({fmt})")
