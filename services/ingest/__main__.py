"""Ingest has no input topic: it runs one worker thread per camera and a shared producer."""

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
from services.core.messages import schema_headers
from services.core.metrics import produced
from services.core.runtime import Runtime, exit_if_unreachable, on_shutdown
from services.ingest.backlog import Backlog
from services.ingest.camera import CameraWorker
from services.ingest.cameras import load_cameras
from services.ingest.failures import SourceFailures
from services.ingest.settings import IngestSettings
from steadyeye.v1.frames_pb2 import Frame

log = logging.getLogger("services.ingest")
traces_started = Counter(
    "steadyeye_traces_started_total", "Frames whose trace was sampled and handed to the exporter"
)


def main() -> None:
    runtime = Runtime.start("ingest", IngestSettings)
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
    workers = [
        CameraWorker(camera, settings, payloads, publish, next_live_id, backlog, stop, failures)
        for camera in cameras
    ]
    on_shutdown(stop.set)
    backlog.start()
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
    log.info("published %d frames; bye", sum(w.published for w in workers))


if __name__ == "__main__":
    main()
