"""Kafka clients built from KafkaSettings, so no service passes broker options by hand.

`KafkaSettings.client` picks librdkafka (services/core/rdkafka.py, the default) or kafka-python;
both present kafka-python's API to the loop and to ingest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition

from services.core import rdkafka
from services.core.settings import KafkaSettings

Producer = KafkaProducer | rdkafka.Producer
Consumer = KafkaConsumer | rdkafka.Consumer


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "security_protocol": settings.security_protocol,
    }
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password:
            options["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    if settings.ssl_cafile:
        options["ssl_cafile"] = settings.ssl_cafile
    return options


# kafka-python's connection option names -> librdkafka's
_RDKAFKA_NAMES = {
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
}


def rdkafka_options(settings: KafkaSettings) -> dict[str, Any]:
    options = client_options(settings)
    servers = ",".join(options.pop("bootstrap_servers"))
    return {"bootstrap.servers": servers, **{_RDKAFKA_NAMES[k]: v for k, v in options.items()}}


def producer(settings: KafkaSettings) -> Producer:
    if settings.client == "librdkafka":
        return rdkafka.Producer(settings, rdkafka_options(settings))
    return KafkaProducer(
        **client_options(settings),
        acks="all",
        linger_ms=settings.linger_ms,
        compression_type=settings.compression_type,
        max_request_size=settings.max_request_size,
        # Retries must not reorder a camera's frames.
        max_in_flight_requests_per_connection=1,
        # Not idempotent: a broker that lost its state (the embedded one restarted) answers
        # UnknownProducerId forever. Duplicates are ours to absorb anyway (camera_id+frame_id).
        enable_idempotence=False,
        retries=2**31 - 1,
    )


def group_options(settings: KafkaSettings) -> dict[str, Any]:
    """A kafka-python group member's connection, timing and fetch sizes."""
    return {
        **client_options(settings),
        "max_poll_interval_ms": settings.max_poll_interval_ms,
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "max_partition_fetch_bytes": settings.max_request_size,
        "fetch_max_bytes": max(settings.max_request_size * 4, 50 * 1024 * 1024),
    }


def consumer(
    settings: KafkaSettings,
    group_id: str,
    topics: list[str],
    on_assigned: Callable[[set[TopicPartition]], None] | None = None,
) -> Consumer:
    """A group member; `on_assigned` runs after every completed group join (readiness)."""
    if settings.client == "librdkafka":
        return rdkafka.Consumer(
            settings, rdkafka_options(settings), group_id, topics, on_assigned or (lambda _: None)
        )
    client = KafkaConsumer(
        **group_options(settings),
        group_id=group_id,
        enable_auto_commit=False,  # offsets are committed by the loop, after outputs are flushed
        auto_offset_reset="earliest",
    )
    client.subscribe(topics, listener=_Listener(on_assigned or (lambda _: None)))
    return client


class _Listener(ConsumerRebalanceListener):
    def __init__(self, on_assigned: Callable[[set[TopicPartition]], None]) -> None:
        self._on_assigned = on_assigned

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        pass

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._on_assigned(assigned)
