"""The cameras one ingest replica runs: those of the steadyeye.cameras.v1 partitions its
consumer group assigns it, started, changed and stopped as the topic and the assignment change.

Kafka is the scheduler: replicas join the group `steadyeye-ingest`, and a rebalance moves
partitions, so cameras, between them. Offsets are never committed: a replica given a partition
reads it from the beginning, so it learns the partition's cameras whatever happened before.
Before a partition is taken away (eager rebalance: before any other replica gets it) its
cameras are stopped; a replica that died or stalled is fenced by the per-camera leases.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from prometheus_client import Gauge

from services.core.errors import PoisonMessage
from services.core.messages import deadletter_headers
from services.ingest.cameras import Camera
from services.ingest.directory import parse
from services.ingest.lease import CameraLeases

log = logging.getLogger(__name__)
GROUP = "steadyeye-ingest"
JOIN_TIMEOUT_S = 10.0

cameras_running = Gauge("steadyeye_ingest_cameras", "Cameras this ingest replica runs")

RunCamera = Callable[[Camera, threading.Event], None]  # runs until the event is set
DeadLetter = Callable[[bytes | None, bytes | None, list], None]


@dataclass
class _Running:
    camera: Camera
    halt: threading.Event
    thread: threading.Thread


class Fleet:
    """Camera threads by id: `apply` makes them match the wanted cameras."""

    def __init__(self, run_camera: RunCamera, leases: CameraLeases, stop: threading.Event):
        self._run_camera = run_camera
        self._leases = leases
        self._stop = stop
        self._running: dict[str, _Running] = {}

    def apply(self, wanted: dict[str, Camera]) -> None:
        leaving = [r for cid, r in self._running.items() if wanted.get(cid) != r.camera]
        for running in leaving:
            running.halt.set()
        for running in leaving:  # stopped before anything else may start them
            running.thread.join(JOIN_TIMEOUT_S)
            if running.thread.is_alive():
                log.error("camera %s did not stop within %.0fs", running.camera.id,
                          JOIN_TIMEOUT_S)  # fmt: skip
            del self._running[running.camera.id]
            log.info("camera %s stopped here", running.camera.id)
        for camera_id, camera in wanted.items():
            if camera_id not in self._running:
                halt = threading.Event()
                thread = threading.Thread(target=self._own, args=(camera, halt), daemon=True,
                                          name=f"camera-{camera_id}")  # fmt: skip
                self._running[camera_id] = _Running(camera, halt, thread)
                thread.start()
                log.info("camera %s started here", camera_id)
        cameras_running.set(len(self._running))

    def stop_all(self) -> None:
        self.apply({})

    def _own(self, camera: Camera, halt: threading.Event) -> None:
        """Wait for the camera's lease (a replica that lost it may still be publishing until
        it expires), run the camera, release the lease."""
        while not self._leases.acquire(camera.id):
            if halt.wait(0.5) or self._stop.is_set():
                return
        try:
            self._run_camera(camera, halt)
        finally:
            self._leases.release(camera.id)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, directory: CameraDirectory) -> None:
        self._directory = directory

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Nothing stops yet: with eager rebalancing every partition is revoked, and most come
        back to the same replica. The leases keep a camera from starting elsewhere until it
        has stopped here (CameraDirectory.assigned, right after the group's join)."""

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._directory.assigned(assigned)


class CameraDirectory:
    """This replica's share of the cameras topic, as the group assigns it."""

    def __init__(self, consumer_options: dict, topic: str, fleet: Fleet,
                 dead_letter: DeadLetter) -> None:  # fmt: skip
        self._consumer = KafkaConsumer(
            **consumer_options,
            group_id=GROUP,
            enable_auto_commit=False,  # every assignment reads its partitions from the start
            auto_offset_reset="earliest",
        )
        self._consumer.subscribe([topic], listener=_Listener(self))
        self._fleet = fleet
        self._dead_letter = dead_letter
        self._by_partition: dict[int, dict[str, Camera]] = {}
        self.joined = False

    def poll(self, timeout_s: float) -> None:
        batch = self._consumer.poll(timeout_ms=int(timeout_s * 1000))
        changed = False
        for tp, records in batch.items():
            cameras = self._by_partition.setdefault(tp.partition, {})
            for record in records:
                try:
                    camera_id, camera = parse(record.key, record.value, record.headers)
                except PoisonMessage as exc:
                    log.warning("camera record %s/%s: %s", tp.partition, record.offset, exc)
                    self._dead_letter(record.key, record.value,
                                      deadletter_headers(record, str(exc), "PoisonMessage",
                                                         "ingest"))  # fmt: skip
                    continue
                if camera is None:
                    cameras.pop(camera_id, None)
                else:
                    cameras[camera_id] = camera
                changed = True
        if changed:
            self._fleet.apply(self.wanted())

    def wanted(self) -> dict[str, Camera]:
        return {cid: cam for cameras in self._by_partition.values() for cid, cam in cameras.items()}

    def assigned(self, partitions: set[TopicPartition]) -> None:
        self.joined = True
        now = {tp.partition for tp in partitions}
        for partition in set(self._by_partition) - now:
            del self._by_partition[partition]
        for partition in now - set(self._by_partition):
            self._by_partition[partition] = {}
        if partitions:  # read again from the start: every camera of each partition, in order
            self._consumer.seek_to_beginning(*partitions)
        self._fleet.apply(self.wanted())
        log.info("cameras topic partitions here: %s", sorted(now))

    def close(self) -> None:
        self._consumer.close(autocommit=False)
