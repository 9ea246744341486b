"""Reads the topics into a LiveView. No group and no commits: every console sees everything, and
starting one changes nothing for anyone else. Live topics are read from their ends; the ones
that say what state things are in (alerts, drift, rollouts) from a little before."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from opentelemetry import trace
from prometheus_client import Counter

from services.console.live import LiveView
from services.core import kafka, tracing
from services.core.errors import PoisonMessage
from services.core.health import Health
from services.core.messages import decode
from services.core.settings import KafkaSettings, TopicSettings
from steadyeye.v1.alerts_pb2 import Alert
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.drift_pb2 import DriftEvent
from steadyeye.v1.rollouts_pb2 import RolloutEvent
from steadyeye.v1.tracks_pb2 import Tracks

log = logging.getLogger(__name__)
skipped_total = Counter(
    "steadyeye_console_records_skipped_total", "Records the console could not read", ["topic"]
)
REWIND_TOPIC_RECORDS = 1000  # per partition, for topics whose history says what state holds
MISSING_TOPICS_RETRY_S = 5.0


def trace_id_of(headers: list[tuple[str, bytes]] | None) -> str:
    """The trace the record belongs to (its traceparent header), as Jaeger spells it."""
    context = trace.get_current_span(tracing.extract(headers)).get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


class Feed:
    def __init__(
        self,
        settings: KafkaSettings,
        topics: TopicSettings,
        view: LiveView,
        alerts_kept: int,
        health: Health,
    ) -> None:
        self._view = view
        self._health = health
        health.set("topics", False)  # ready once every topic is being read
        self._consumer = KafkaConsumer(**kafka.client_options(settings), enable_auto_commit=False)
        self._rewind = {
            topics.tracks: 0,
            topics.detections: 0,
            topics.alerts: alerts_kept,
            topics.drift: REWIND_TOPIC_RECORDS,
            topics.rollouts: REWIND_TOPIC_RECORDS,
        }
        self._readers: dict[str, Callable[[ConsumerRecord, float], None]] = {
            topics.tracks: self._tracks,
            topics.detections: self._detections,
            topics.alerts: self._alerts,
            topics.drift: self._drift,
            topics.rollouts: self._rollouts,
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()

    def _run(self) -> None:
        assigned: set[str] = set()
        next_check = 0.0
        while not self._stop.is_set():
            self._health.progressed()
            try:
                if len(assigned) < len(self._rewind) and time.monotonic() >= next_check:
                    self._assign(assigned)  # topics created after the console started
                    next_check = time.monotonic() + MISSING_TOPICS_RETRY_S
                if not assigned:
                    self._stop.wait(0.5)
                    continue
                batch = self._consumer.poll(timeout_ms=200, max_records=1000)
            except KafkaError as exc:
                log.warning("reading the topics: %s; retrying", exc)
                self._stop.wait(1.0)
                continue
            now = time.time()
            for records in batch.values():
                for record in records:
                    try:
                        self._readers[record.topic](record, now)
                    except PoisonMessage as exc:
                        skipped_total.labels(record.topic).inc()
                        log.warning("skipped %s@%s: %s", record.topic, record.offset, exc)

    def _assign(self, assigned: set[str]) -> None:
        found = {}
        for topic in self._rewind:
            partitions = self._consumer.partitions_for_topic(topic)
            if partitions:
                found[topic] = [TopicPartition(topic, p) for p in sorted(partitions)]
        if set(found) == assigned:
            return
        every = [tp for tps in found.values() for tp in tps]
        self._consumer.assign(every)
        ends = self._consumer.end_offsets(every)
        for tp in every:
            if tp.topic not in assigned:  # the already-assigned keep their positions
                self._consumer.seek(tp, max(0, ends[tp] - self._rewind[tp.topic]))
        assigned.update(found)
        self._health.set("topics", len(assigned) == len(self._rewind))
        if len(assigned) < len(self._rewind):
            log.info("waiting for topics %s", sorted(set(self._rewind) - assigned))

    def _tracks(self, record: ConsumerRecord, now: float) -> None:
        message = decode(record.value, record.headers, Tracks)
        self._view.add_tracks(message, trace_id_of(record.headers), now)

    def _detections(self, record: ConsumerRecord, _now: float) -> None:
        self._view.add_detections(decode(record.value, record.headers, Detections))

    def _alerts(self, record: ConsumerRecord, _now: float) -> None:
        alert = decode(record.value, record.headers, Alert)
        self._view.add_alert(alert, trace_id_of(record.headers))

    def _drift(self, record: ConsumerRecord, _now: float) -> None:
        self._view.add_drift(decode(record.value, record.headers, DriftEvent))

    def _rollouts(self, record: ConsumerRecord, _now: float) -> None:
        self._view.add_rollout(decode(record.value, record.headers, RolloutEvent))
