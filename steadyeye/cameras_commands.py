"""`steadyeye cameras`: the cameras every ingest replica shares, on the compacted topic
steadyeye.cameras.v1 (services/ingest/directory.py). A change takes effect within seconds on the
replica that owns the camera; nothing restarts, and the other cameras are not disturbed.

- apply FILE [--dry-run]: make the topic hold exactly the file's cameras (adds, updates,
  removes; prints the difference);
- list: the cameras the topic holds;
- remove ID...: stop and forget these cameras.

The broker is STEADYEYE_KAFKA_BOOTSTRAP_SERVERS (`steadyeye up` prints the embedded one's).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from kafka.errors import KafkaError

from services.core.errors import ConfigError
from services.core.kafka import client_options
from services.core.settings import KafkaSettings, TopicSettings, load
from services.ingest import directory
from services.ingest.cameras import load_cameras


def _where() -> tuple[dict[str, Any], str]:
    """The broker (with the services' SASL/TLS settings) and the cameras topic."""
    kafka, topics = client_options(load(KafkaSettings)), load(TopicSettings)
    directory.create_topic(kafka, topics.cameras, topics.partitions)
    return kafka, topics.cameras


def _fail(message: str) -> None:
    click.echo(f"steadyeye cameras: {message}", err=True)
    raise SystemExit(2)


@click.group()
def cameras() -> None:
    """The cameras ingest runs (a compacted topic shared by every ingest replica)."""


@cameras.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the difference, change nothing.")
def apply_command(file: Path, dry_run: bool) -> None:
    """Make the cameras topic hold exactly FILE's cameras."""
    try:
        wanted = load_cameras(file)
        found = directory.apply(*_where(), wanted, dry_run=dry_run)
    except (ConfigError, KafkaError) as exc:
        _fail(str(exc))
    for line in found.lines():
        click.echo(line)
    verb = "would change" if dry_run else "changed"
    click.echo(f"{verb}: {len(found.added)} added, {len(found.changed)} updated, "
               f"{len(found.removed)} removed, {len(found.unchanged)} unchanged")  # fmt: skip


@cameras.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_command(as_json: bool) -> None:
    """The cameras the topic holds."""
    try:
        found = directory.read_all(*_where())
    except (ConfigError, KafkaError) as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps([c.model_dump(exclude_defaults=True) for c in found.values()]))
        return
    for camera in sorted(found.values(), key=lambda c: c.id):
        click.echo(f"{camera.id}\t{camera.priority}\t{camera.source}")


@cameras.command("remove")
@click.argument("ids", nargs=-1, required=True)
def remove_command(ids: tuple[str, ...]) -> None:
    """Stop and forget these cameras (tombstones on the topic)."""
    try:
        kafka, topic = _where()
        known = directory.read_all(kafka, topic)
        missing = [camera_id for camera_id in ids if camera_id not in known]
        if missing:
            _fail(f"no such camera: {', '.join(missing)}")
        directory.publish(kafka, topic, [], list(ids))
    except (ConfigError, KafkaError) as exc:
        _fail(str(exc))
    click.echo(f"removed: {', '.join(ids)}")
