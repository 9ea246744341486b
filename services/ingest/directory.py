"""Cameras as data: one CameraConfig record per camera on the compacted topic
steadyeye.cameras.v1, keyed by camera id; a tombstone removes a camera. `steadyeye cameras
apply` makes the topic match a cameras file; ingest replicas run the cameras of the partitions
their consumer group gives them (services/ingest/fleet.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError
from pydantic import ValidationError

from services.core.errors import ConfigError, PoisonMessage
from services.core.messages import decode, schema_headers
from services.ingest.cameras import Camera
from steadyeye.v1.cameras_pb2 import CameraConfig, CameraPace, CameraPriority

PACES = {"realtime": CameraPace.CAMERA_PACE_REALTIME, "fast": CameraPace.CAMERA_PACE_FAST}
PRIORITIES = {
    "high": CameraPriority.CAMERA_PRIORITY_HIGH,
    "normal": CameraPriority.CAMERA_PRIORITY_NORMAL,
    "low": CameraPriority.CAMERA_PRIORITY_LOW,
}
PACE_OF = {value: name for name, value in PACES.items()}
PRIORITY_OF = {value: name for name, value in PRIORITIES.items()}
# Compacted: the topic is the cameras' current configuration, however often they changed.
TOPIC_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}


def to_record(camera: Camera) -> CameraConfig:
    return CameraConfig(
        id=camera.id,
        source=camera.source,
        pace=PACES[camera.pace],
        fps=camera.fps or 0.0,
        max_frames=camera.max_frames or 0,
        loop=camera.loop,
        priority=PRIORITIES[camera.priority],
    )


def from_record(record: CameraConfig) -> Camera:
    """The camera, validated as the cameras file's are (a record is input like any other)."""
    pace = PACE_OF.get(record.pace, "realtime")
    priority = PRIORITY_OF.get(record.priority, "normal")
    try:
        return Camera(id=record.id, source=record.source, pace=pace, fps=record.fps or None,
                      max_frames=record.max_frames or None, loop=record.loop,
                      priority=priority)  # fmt: skip
    except ValidationError as exc:
        raise PoisonMessage(f"camera record {record.id!r}: {exc.errors()[0]['msg']}") from exc


def parse(key: bytes | None, value: bytes | None, headers: list) -> tuple[str, Camera | None]:
    """(camera id, its camera), or (id, None) for a tombstone. PoisonMessage: unreadable."""
    if not key:
        raise PoisonMessage("camera record without a key")
    camera_id = key.decode("utf-8", "replace")
    if value is None:
        return camera_id, None
    camera = from_record(decode(value, headers, CameraConfig))
    if camera.id != camera_id:
        raise PoisonMessage(f"camera record keyed {camera_id!r} names camera {camera.id!r}")
    return camera_id, camera


Kafka = str | dict[str, Any]  # a bootstrap address, or a client's options (SASL, TLS)


def _options(kafka: Kafka) -> dict[str, Any]:
    return {"bootstrap_servers": kafka} if isinstance(kafka, str) else kafka


def create_topic(kafka: Kafka, topic: str, partitions: int, replication: int = 1) -> None:
    """The topic, compacted, unless it exists (the chart's topics Job creates it replicated)."""
    admin = KafkaAdminClient(**_options(kafka))
    try:
        admin.create_topics([NewTopic(topic, partitions, replication, topic_configs=TOPIC_CONFIG)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def read_all(kafka: Kafka, topic: str, timeout_s: float = 10.0) -> dict[str, Camera]:
    """The cameras the topic holds now: every partition read to its end, the last record of a
    camera wins, a tombstone removes it. Unreadable records are skipped (ingest dead-letters
    them)."""
    consumer = KafkaConsumer(**_options(kafka), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            raise ConfigError(f"topic {topic} does not exist")
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        cameras: dict[str, Camera] = {}
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            batch = consumer.poll(timeout_ms=int(timeout_s * 1000))
            if not batch:
                raise ConfigError(f"topic {topic}: no records within {timeout_s:g}s")
            for records in batch.values():
                for record in records:
                    try:
                        camera_id, camera = parse(record.key, record.value, record.headers)
                    except PoisonMessage:
                        continue
                    if camera is None:
                        cameras.pop(camera_id, None)
                    else:
                        cameras[camera_id] = camera
        return cameras
    finally:
        consumer.close()


@dataclass
class Diff:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            *(f"+ {name}" for name in self.added),
            *(f"~ {name}" for name in self.changed),
            *(f"- {name}" for name in self.removed),
        ]


def diff(current: dict[str, Camera], wanted: list[Camera]) -> Diff:
    found = Diff()
    wanted_ids = {camera.id for camera in wanted}
    for camera in wanted:
        if camera.id not in current:
            found.added.append(camera.id)
        elif current[camera.id] != camera:
            found.changed.append(camera.id)
        else:
            found.unchanged.append(camera.id)
    found.removed = sorted(set(current) - wanted_ids)
    return found


def publish(kafka: Kafka, topic: str, cameras: list[Camera], removed: list[str]) -> None:
    """Write these cameras and tombstones, and wait until the broker has them all."""
    producer = KafkaProducer(**_options(kafka), acks="all")
    try:
        for camera in cameras:
            record = to_record(camera)
            producer.send(topic, key=camera.id.encode(), value=record.SerializeToString(),
                          headers=schema_headers(record))  # fmt: skip
        for camera_id in removed:
            producer.send(topic, key=camera_id.encode(), value=None)
        producer.flush(timeout=30)
    finally:
        producer.close()


def apply(kafka: Kafka, topic: str, wanted: list[Camera], dry_run: bool = False) -> Diff:
    """Make the topic hold exactly these cameras: add, update, remove; unchanged ones are not
    written again (their replicas go on undisturbed)."""
    found = diff(read_all(kafka, topic), wanted)
    if not dry_run:
        changed = set(found.added) | set(found.changed)
        publish(kafka, topic, [c for c in wanted if c.id in changed], found.removed)
    return found
