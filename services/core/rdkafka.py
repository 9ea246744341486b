"""librdkafka clients (confluent-kafka) behind the part of kafka-python's API the core uses.

Why: kafka-python does its protocol work in Python; the core loop relaying one small record
(fetch, produce, flush, commit) cost 1.29 ms of CPU with it and 0.13 ms with librdkafka
(`steadyeye bench kafka`, docs/performance.md). The loop and ingest keep one vocabulary:
kafka-python's TopicPartition, ConsumerRecord and errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import confluent_kafka as ck
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaConnectionError, KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from services.core.settings import KafkaSettings

log = logging.getLogger("rdkafka")
CONNECT_TIMEOUT_S = 10.0
SEND_BLOCK_S = 60.0  # kafka-python's max_block_ms: how long send waits for queue room
# The group moved on: this member's offsets are not its own to commit any more.
_REBALANCED = {
    ck.KafkaError.REBALANCE_IN_PROGRESS,
    ck.KafkaError.ILLEGAL_GENERATION,
    ck.KafkaError.UNKNOWN_MEMBER_ID,
    ck.KafkaError._ASSIGNMENT_LOST,
}


def _error(exc: ck.KafkaException) -> KafkaError:
    error = exc.args[0] if exc.args else None
    if isinstance(error, ck.KafkaError) and error.code() in _REBALANCED:
        return CommitFailedError(error.str())
    return KafkaError(str(error or exc))


def _check_reachable(client: ck.Consumer | ck.Producer, servers: str) -> None:
    """librdkafka connects lazily; kafka-python fails at construction, so the services exit
    with a clear error either way."""
    try:
        client.list_topics(timeout=CONNECT_TIMEOUT_S)
    except ck.KafkaException as exc:
        raise KafkaConnectionError(f"no broker at {servers} answered: {exc.args[0]}") from None


class Delivery:
    """What the loop reads of kafka-python's FutureRecordMetadata: failed() and exception."""

    __slots__ = ("exception",)

    def __init__(self) -> None:
        self.exception: KafkaError | None = None

    def __call__(self, error: ck.KafkaError | None, _message: ck.Message) -> None:
        if error is not None:
            self.exception = KafkaError(error.str())

    def failed(self) -> bool:
        return self.exception is not None


class Producer:
    def __init__(self, settings: KafkaSettings, connection: dict[str, Any]) -> None:
        self._client = ck.Producer(
            {
                **connection,
                "acks": "all",
                "linger.ms": settings.linger_ms,
                "compression.type": settings.compression_type or "none",
                "message.max.bytes": settings.max_request_size,
                # Retries must not reorder a camera's frames; not idempotent, as with
                # kafka-python (services/core/kafka.py says why).
                "max.in.flight.requests.per.connection": 1,
                "enable.idempotence": False,
                # Java's and kafka-python's partitioner: a camera's frames land in the same
                # partition whichever client produced them (librdkafka's default differs).
                "partitioner": "murmur2_random",
            },
            logger=log,
        )
        _check_reachable(self._client, settings.bootstrap_servers)

    def send(
        self,
        topic: str,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Delivery:
        delivery = Delivery()
        deadline = time.monotonic() + SEND_BLOCK_S
        while True:
            try:
                self._client.produce(topic, value, key, on_delivery=delivery, headers=headers)
                break
            except BufferError:  # the local queue is full: serve acknowledgements, retry
                if time.monotonic() > deadline:
                    raise KafkaTimeoutError(f"producer queue full for {SEND_BLOCK_S}s") from None
                self._client.poll(0.1)
        self._client.poll(0)  # run delivery callbacks that are due; never blocks
        return delivery

    def flush(self, timeout: float | None = None) -> None:
        left = self._client.flush(-1 if timeout is None else timeout)
        if left:
            raise KafkaTimeoutError(f"{left} records not acknowledged after {timeout}s")

    def close(self, timeout: float | None = None) -> None:
        self._client.flush(-1 if timeout is None else timeout)


class Consumer:
    def __init__(
        self,
        settings: KafkaSettings,
        connection: dict[str, Any],
        group_id: str,
        topics: list[str],
        on_assigned: Callable[[set[TopicPartition]], None],
    ) -> None:
        self._client = ck.Consumer(
            {
                **connection,
                "group.id": group_id,
                "enable.auto.commit": False,  # the loop commits after outputs are flushed
                "auto.offset.reset": "earliest",
                "max.poll.interval.ms": settings.max_poll_interval_ms,
                "session.timeout.ms": settings.session_timeout_ms,
                "heartbeat.interval.ms": settings.heartbeat_interval_ms,
                "fetch.wait.max.ms": settings.fetch_max_wait_ms,
                "max.partition.fetch.bytes": settings.max_request_size,
                "fetch.max.bytes": max(settings.max_request_size * 4, 50 * 1024 * 1024),
                # Prefetch is bounded by bytes too: a few batches ahead, not 100k records.
                "queued.max.messages.kbytes": 16 * 1024,
            },
            logger=log,
        )
        _check_reachable(self._client, settings.bootstrap_servers)
        self._client.subscribe(
            topics,
            on_assign=lambda _c, partitions: on_assigned(
                {TopicPartition(p.topic, p.partition) for p in partitions}
            ),
        )

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        # consume(n, timeout) waits for n messages or the timeout: a camera's frame would sit
        # up to the whole timeout at every hop. Like kafka-python: wait for the first, then
        # take what is already queued.
        try:
            first = self._client.poll(timeout_ms / 1000)
            messages = [] if first is None else [first, *self._client.consume(max_records - 1, 0)]
        except ck.KafkaException as exc:
            raise _error(exc) from None
        batch: dict[TopicPartition, list[ConsumerRecord]] = {}
        for m in messages:
            error = m.error()
            if error is not None:
                if error.fatal():
                    raise KafkaError(error.str())
                log.warning("consumer: %s", error.str())
                continue
            key, value, headers = m.key(), m.value(), m.headers() or []
            record = ConsumerRecord(
                m.topic(), m.partition(), -1, m.offset(), m.timestamp()[1], 0, key, value,
                headers, None, len(key or b""), len(value or b""), -1,
            )  # fmt: skip
            batch.setdefault(TopicPartition(m.topic(), m.partition()), []).append(record)
        return batch

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        partitions = [
            ck.TopicPartition(tp.topic, tp.partition, o.offset) for tp, o in offsets.items()
        ]
        try:
            results = self._client.commit(offsets=partitions, asynchronous=False)
        except ck.KafkaException as exc:
            raise _error(exc) from None
        for result in results or ():
            if result.error is not None:
                raise _error(ck.KafkaException(result.error))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        try:
            self._client.seek(ck.TopicPartition(tp.topic, tp.partition, offset))
        except ck.KafkaException as exc:
            raise _error(exc) from None

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(p.topic, p.partition) for p in self._client.assignment()}

    def highwater(self, tp: TopicPartition) -> int | None:
        """The last fetch response's high watermark (no request), as kafka-python's."""
        try:
            _, high = self._client.get_watermark_offsets(
                ck.TopicPartition(tp.topic, tp.partition), cached=True
            )
        except ck.KafkaException:
            return None
        return high if high >= 0 else None

    def close(self, autocommit: bool = False) -> None:
        self._client.close()  # auto-commit is off, so closing commits nothing
