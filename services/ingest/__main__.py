"""Ingest runs one worker thread per camera and a shared producer. Its cameras are either a
cameras file's (STEADYEYE_INGEST_CAMERAS_FILE: one replica, fixed at start) or, without one,
those of the steadyeye.cameras.v1 partitions its consumer group gives it (services/ingest/
fleet.py): any number of replicas, cameras added, changed and removed at runtime."""

from __future__ import annotations

import logging
import sys
import threading

from kafka.errors import KafkaTimeoutError
from opentelemetry import trace
from opentelemetry.semconv.trace import SpanAttributes
from opentelemetry.trace import SpanKind
from prometheus_client import Counter
from redis import RedisError

from services.core import kafka, tracing
from services.core.errors import ConfigError, TransientError
from services.core.kafka import Producer, group_options
from services.core.messages import schema_headers
from services.core.metrics import produced
from services.core.runtime import Runtime, exit_if_unreachable, on_shutdown, replica_id
from services.ingest.backlog import Backlog
from services.ingest.camera import CameraWorker, Publish
from services.ingest.cameras import Camera, load_cameras
from services.ingest.failures import SourceFailures
from services.ingest.fleet import CameraDirectory, Fleet, RunCamera
from services.ingest.lease import CameraLeases
from services.ingest.settings import IngestSettings
from steadyeye.v1.frames_pb2 import Frame

log = logging.getLogger("services.ingest")
traces_started = Counter(
    "steadyeye_traces_started_total", "Frames whose trace was sampled and handed to the exporter"
)


def main() -> None:
    runtime = Runtime.start("ingest", IngestSettings)
    cameras = None
    if runtime.settings.cameras_file:
        try:
            cameras = load_cameras(runtime.settings.cameras_file)
        except ConfigError as exc:
            print(f"steadyeye ingest: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
    producer = exit_if_unreachable(runtime, lambda: kafka.producer(runtime.kafka))
    topic = runtime.topics.frames
    tracer = trace.get_tracer("steadyeye.ingest")
    redis = runtime.redis()
    stop = threading.Event()

    def publish(frame: Frame) -> bool:
        """Block until the broker takes the frame: file sources pause instead of dropping."""
        with tracer.start_as_current_span(
            f"{topic} publish",
            kind=SpanKind.PRODUCER,
            attributes={
                SpanAttributes.MESSAGING_SYSTEM: "kafka",
                SpanAttributes.MESSAGING_DESTINATION_NAME: topic,
                "steadyeye.camera_id": frame.ref.camera_id,
                "steadyeye.frame_id": frame.ref.frame_id,
            },
        ) as span:
            if span.get_span_context().trace_flags.sampled:
                traces_started.inc()
            headers = tracing.inject(schema_headers(frame))
            value = frame.SerializeToString()
            while not stop.is_set():
                try:
                    producer.send(
                        topic, key=frame.ref.camera_id.encode(), value=value, headers=headers
                    )
                    produced.labels("ingest", topic).inc()
                    return True
                except KafkaTimeoutError as exc:
                    log.warning("broker not accepting frames, retrying: %s", exc)
            return False

    def next_live_id(camera_id: str) -> int:
        try:
            # INCR itself: redis-py's incr() sends INCRBY, which ingest's ACL user may not run.
            key = f"steadyeye:ingest:{camera_id}:frame_id"
            return int(redis.execute_command("INCR", key)) - 1
        except RedisError as exc:  # the camera waits and retries (CameraWorker._stored)
            raise TransientError(f"redis unavailable numbering {camera_id}: {exc}") from exc

    settings = runtime.settings
    backlog = Backlog(
        runtime.kafka,
        {"steadyeye-preprocess": topic, "steadyeye-inference": runtime.topics.ready},
        settings.max_backlog_frames,
        settings.backlog_check_s,
        stop,
        settings.backlog_shares(),
    )
    payloads = runtime.payloads()
    failures = SourceFailures(runtime.health)  # a broken camera is a note in /readyz, not unready
    on_shutdown(stop.set)
    backlog.start()

    def run_camera(camera: Camera, halt: threading.Event, publish: Publish = publish) -> None:
        worker = CameraWorker(camera, settings, payloads, publish, next_live_id, backlog, halt,
                              failures)  # fmt: skip
        worker.run()
        published.inc(worker.published)

    if cameras is None:
        run_fleet(runtime, producer, run_camera, publish, stop)
    else:
        workers = [
            threading.Thread(
                target=run_camera, args=(camera, stop), name=f"camera-{camera.id}", daemon=True
            )
            for camera in cameras
        ]
        for worker in workers:
            worker.start()
        runtime.health.set("started", True)
        # Keep serving probes after file sources end; the process exits on SIGTERM only.
        while not stop.wait(1.0):
            runtime.health.progressed()
            producer.flush()
        for worker in workers:
            worker.join(timeout=10)
    producer.flush(timeout=10)
    producer.close()
    tracing.shutdown()
    log.info("published %d frames; bye", published.total)


class _Published:
    def __init__(self) -> None:
        self.total = 0
        self._lock = threading.Lock()

    def inc(self, count: int) -> None:
        with self._lock:
            self.total += count


published = _Published()


def run_fleet(runtime: Runtime[IngestSettings], producer: Producer, run_camera: RunCamera,
              publish: Publish, stop: threading.Event) -> None:  # fmt: skip
    """The cameras of this replica's share of the cameras topic, each published only while
    this replica holds its lease."""
    settings = runtime.settings
    leases = CameraLeases(runtime.redis(), replica_id(), settings.lease_ttl_s, stop)
    leases.start()

    def fenced(camera: Camera, halt: threading.Event) -> None:
        def send(frame: Frame) -> bool:
            if leases.holds(camera.id):
                return publish(frame)
            log.error("camera %s: lease lost; this replica stops it", camera.id)
            halt.set()
            return False

        run_camera(camera, halt, send)

    fleet = Fleet(fenced, leases, stop)
    deadletter = runtime.topics.deadletter
    directory = exit_if_unreachable(runtime, lambda: CameraDirectory(
        group_options(runtime.kafka), runtime.topics.cameras, fleet,
        lambda key, value, headers: producer.send(deadletter, key=key, value=value,
                                                  headers=headers),
    ))  # fmt: skip
    runtime.health.set("joined", False)  # ready once the group has given us our share
    runtime.health.set("started", True)
    try:
        while not stop.is_set():
            directory.poll(1.0)
            runtime.health.set("joined", directory.joined)
            runtime.health.progressed()
            producer.flush()
    finally:
        fleet.stop_all()  # cameras stop and release their leases: the next owner starts at once
        directory.close()


if __name__ == "__main__":
    main()
