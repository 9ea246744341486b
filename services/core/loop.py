"""consume -> handle -> produce -> flush -> commit, at-least-once.

Offsets are committed only after every output of the batch is acknowledged by the broker. A
poison message goes to the dead-letter topic with its reason and is committed; a transient
failure commits nothing from that message on and rewinds its partition to it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import redis
from google.protobuf.message import Message
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.semconv.trace import SpanAttributes
from opentelemetry.trace import SpanKind

from services.core import metrics, tracing
from services.core.errors import PoisonMessage, TransientError
from services.core.handler import Handler, Incoming, Inputs, Result
from services.core.health import Health
from services.core.kafka import Consumer, Producer
from services.core.messages import Headers, Output, deadletter_headers, decode, schema_headers
from services.core.rdkafka import Delivery

log = logging.getLogger(__name__)
TRANSIENT = (
    TransientError,
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    TimeoutError,
)
# Below any sane max_poll_interval_ms, so backing off never costs the group membership.
MAX_BACKOFF_S = 2.0
TICK_S = 1.0
FLUSH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class _DeadLetter:
    """The original bytes and headers, re-sent unchanged with the reason added."""

    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass
class _Entry:
    record: ConsumerRecord
    span: trace.Span
    message: Message | None = None  # None when it could not be decoded
    result: Result | None = None
    outputs: list[Output | _DeadLetter] = field(default_factory=list)

    @property
    def handled(self) -> bool:
        return self.message is not None and isinstance(self.result, list)


class ConsumerLoop:
    def __init__(
        self,
        service: str,
        handler: Handler,
        consumer: Consumer,
        producer: Producer,
        deadletter_topic: str,
        health: Health,
        max_poll_records: int,
        inputs: Inputs | None = None,
    ) -> None:
        """inputs: the type of each subscribed topic's records; None: every record is the
        handler's input_type (a one-topic service)."""
        self._service = service
        self._handler = handler
        self._inputs = None if inputs is None else dict(inputs)
        self._consumer = consumer
        self._producer = producer
        self._deadletter = deadletter_topic
        self._health = health
        self._max_records = max_poll_records
        self._tracer = trace.get_tracer("steadyeye.core")
        self._stopping = threading.Event()
        self._backoff_s = 0.0
        self._next_offset: dict[TopicPartition, int] = {}  # where each partition resumes

    def stop(self) -> None:
        """Finish the batch in hand, commit it, then leave the group (SIGTERM)."""
        self._stopping.set()

    def run(self) -> None:
        self._health.set("started", True)
        next_tick = time.monotonic()
        try:
            while not self._stopping.is_set():
                batch = self._consumer.poll(timeout_ms=500, max_records=self._max_records)
                # The watchdog counts progress as committing something, or having nothing to
                # do: a loop that spins while records wait (rewinds, a wedged fetch) goes unready.
                if self._process(batch) if batch else not self._input_waiting():
                    self._health.progressed()
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + TICK_S
                    self._tick()
        finally:
            self._producer.flush(timeout=10)
            self._consumer.close(autocommit=False)
            self._handler.close()

    def _tick(self) -> None:
        try:
            outputs = self._handler.tick()
            if outputs:
                self._flush([self._send(out) for out in outputs])
                self._handler.before_commit()
        except (KafkaError, *TRANSIENT) as exc:
            log.warning("timed outputs failed, will retry at the next tick: %s", exc)

    def _input_waiting(self) -> bool:
        for tp in self._consumer.assignment():
            highwater, position = self._consumer.highwater(tp), self._next_offset.get(tp)
            if highwater is not None and position is not None and highwater > position:
                return True
        return False

    def _process(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> bool:
        """Handle, produce, commit; True when something was committed."""
        started = time.perf_counter()
        entries = [self._open(record) for records in batch.values() for record in records]
        self._handle(entries)
        commits, rewinds = self._plan(batch, entries)
        try:
            committed = self._produce(entries, commits)
            self._handler.before_commit()
        except (KafkaError, *TRANSIENT) as exc:
            log.warning("producing or saving state failed, rewinding the batch: %s", exc)
            commits = {}
            rewinds = {tp: records[0].offset for tp, records in batch.items()}
        if commits:
            try:
                self._consumer.commit(
                    {tp: OffsetAndMetadata(o, None, -1) for tp, o in commits.items()}
                )
                # Handled ones only: a dead-lettered record never leads to a delete.
                self._handler.after_commit([e.message for e in committed if e.handled])
            except CommitFailedError as exc:  # partitions moved: the new owner re-handles them
                log.warning("commit failed after a rebalance: %s", exc)
            except (KafkaError, *TRANSIENT) as exc:
                log.warning("after-commit clean-up failed, left to TTL: %s", exc)
        for tp, offset in rewinds.items():
            self._consumer.seek(tp, offset)
        if rewinds:  # the rewound records will be handled again, from the saved state
            self._handler.reload_state()
        self._next_offset.update(commits)
        self._next_offset.update(rewinds)
        for entry in entries:
            entry.span.end()
        self._record_lag(batch)
        log.debug(
            "batch of %d handled in %.1f ms", len(entries), (time.perf_counter() - started) * 1e3
        )
        metrics.handle_seconds.labels(self._service).observe(
            (time.perf_counter() - started) / max(len(entries), 1)
        )
        self._health.set("dependencies", not rewinds)
        if rewinds:
            self._backoff_s = min(MAX_BACKOFF_S, max(0.2, self._backoff_s * 2))
            self._stopping.wait(self._backoff_s)
        else:
            self._backoff_s = 0.0
        return bool(commits)

    def _open(self, record: ConsumerRecord) -> _Entry:
        metrics.consumed.labels(self._service, record.topic).inc()
        span = self._tracer.start_span(
            f"{record.topic} process",
            context=tracing.extract(record.headers),
            kind=SpanKind.CONSUMER,
            attributes={
                SpanAttributes.MESSAGING_SYSTEM: "kafka",
                SpanAttributes.MESSAGING_DESTINATION_NAME: record.topic,
                SpanAttributes.MESSAGING_OPERATION: "process",
                "messaging.kafka.destination.partition": record.partition,
                "messaging.kafka.message.offset": record.offset,
            },
        )
        return _Entry(record, span)

    def _handle(self, entries: list[_Entry]) -> None:
        decoded: list[tuple[_Entry, Incoming]] = []
        for entry in entries:
            record = entry.record
            try:
                message = decode(record.value, record.headers, self._input_type(record.topic))
            except PoisonMessage as exc:
                entry.result = exc
                continue
            ref = getattr(message, "ref", None)
            if ref is not None and entry.span.is_recording():
                entry.span.set_attribute("steadyeye.camera_id", ref.camera_id)
                entry.span.set_attribute("steadyeye.frame_id", ref.frame_id)
            entry.message = message
            decoded.append((entry, Incoming(message, entry.span)))
        if decoded:
            results = self._handler.handle_batch([incoming for _, incoming in decoded])
            for (entry, _), result in zip(decoded, results, strict=True):
                entry.result = result

    def _input_type(self, topic: str) -> type[Message]:
        if self._inputs is None:
            return self._handler.input_type
        message_type = self._inputs.get(topic)
        if message_type is None:  # never parse a record as a type its topic does not carry
            expected = ", ".join(sorted(self._inputs))
            raise PoisonMessage(f"unexpected topic {topic[:100]!r}: this service reads {expected}")
        return message_type

    def _plan(
        self, batch: dict[TopicPartition, list[ConsumerRecord]], entries: list[_Entry]
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """Walk each partition in order: outputs (or a dead letter) up to the first transient
        failure, whose offset becomes the rewind point."""
        by_tp: dict[TopicPartition, list[_Entry]] = defaultdict(list)
        for entry in entries:
            by_tp[TopicPartition(entry.record.topic, entry.record.partition)].append(entry)
        commits: dict[TopicPartition, int] = {}
        rewinds: dict[TopicPartition, int] = {}
        for tp, tp_entries in by_tp.items():
            for entry in tp_entries:
                result = entry.result
                if isinstance(result, TRANSIENT):
                    metrics.failed.labels(self._service, "transient").inc()
                    log.warning(
                        "transient failure, will retry offset %s: %s", entry.record.offset, result
                    )
                    rewinds[tp] = entry.record.offset
                    break
                if isinstance(result, Exception):
                    with trace.use_span(entry.span, end_on_exit=False):  # log carries trace ids
                        entry.outputs = [self._dead_letter(entry.record, result)]
                else:
                    entry.outputs = result or []
                commits[tp] = entry.record.offset + 1
        return commits, rewinds

    def _dead_letter(self, record: ConsumerRecord, error: Exception) -> _DeadLetter:
        kind = "poison" if isinstance(error, PoisonMessage) else "error"
        metrics.failed.labels(self._service, kind).inc()
        metrics.dead_lettered.labels(self._service).inc()
        reason = (
            str(error) if isinstance(error, PoisonMessage) else f"{type(error).__name__}: {error}"
        )
        log.warning(
            "dead-lettering %s[%s]@%s: %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
            exc_info=error if kind == "error" else None,
        )
        headers = deadletter_headers(record, reason, type(error).__name__, self._service)
        return _DeadLetter(record.key, record.value, headers)

    def _produce(self, entries: list[_Entry], commits: dict[TopicPartition, int]) -> list[_Entry]:
        """Send and flush the outputs of the entries about to be committed; returns those."""
        futures, committed = [], []
        for entry in entries:
            tp = TopicPartition(entry.record.topic, entry.record.partition)
            if tp not in commits or entry.record.offset >= commits[tp]:
                continue  # after a rewind point: will be handled again
            context = trace.set_span_in_context(entry.span)
            futures += [self._send(out, context) for out in entry.outputs]
            committed.append(entry)
        self._flush(futures)
        return committed

    def _send(
        self, out: Output | _DeadLetter, context: Context | None = None
    ) -> FutureRecordMetadata | Delivery:
        if isinstance(out, _DeadLetter):
            topic, key, value, headers = self._deadletter, out.key, out.value, list(out.headers)
        else:
            topic, key = out.topic, out.key.encode()
            value = out.message.SerializeToString()
            headers = schema_headers(out.message) + list(out.headers)
            self._observe_latency(out)
        tracing.inject(headers, context)
        metrics.produced.labels(self._service, topic).inc()
        return self._producer.send(topic, key=key, value=value, headers=headers)

    def _flush(self, futures: list[FutureRecordMetadata | Delivery]) -> None:
        # Bounded: a broker that accepts connections but never acknowledges must not wedge the
        # loop; the timeout rewinds the batch like any other Kafka error.
        self._producer.flush(timeout=FLUSH_TIMEOUT_S)
        for future in futures:
            if future.failed():
                raise future.exception

    def _observe_latency(self, out: Output) -> None:
        ref = getattr(out.message, "ref", None)
        if ref is not None and ref.capture_time.seconds:
            metrics.end_to_end_seconds.labels(self._service).observe(
                time.time() - ref.capture_time.ToNanoseconds() / 1e9
            )

    def _record_lag(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        for tp, records in batch.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                metrics.consumer_lag.labels(self._service, tp.topic, str(tp.partition)).set(
                    max(0, highwater - records[-1].offset - 1)
                )
