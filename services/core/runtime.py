"""Process wiring shared by every service: settings, logging, tracing, health, signals."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Generic, TypeVar

import redis
from kafka.errors import KafkaError

from services.core import kafka, logs, tracing
from services.core.claimcheck import PayloadStore, connect, open_store
from services.core.errors import ConfigError
from services.core.handler import Handler, Inputs
from services.core.health import Health, serve
from services.core.loop import ConsumerLoop
from services.core.settings import (
    ClaimCheckSettings,
    KafkaSettings,
    RedisSettings,
    ServiceSettings,
    TopicSettings,
    load,
)

log = logging.getLogger(__name__)
S = TypeVar("S", bound=ServiceSettings)
T = TypeVar("T")


def _version() -> str:
    try:
        return version("steadyeye")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass
class Runtime(Generic[S]):
    """Everything a handler may need, built once at start-up from validated settings."""

    name: str
    settings: S
    kafka: KafkaSettings
    redis_settings: RedisSettings
    claim_check: ClaimCheckSettings
    topics: TopicSettings
    health: Health

    @classmethod
    def start(cls, name: str, settings_type: type[S]) -> Runtime[S]:
        """Validate all settings first: a bad value exits 1 before anything connects."""
        try:
            settings = load(settings_type)
            runtime = cls(
                name=name,
                settings=settings,
                kafka=load(KafkaSettings),
                redis_settings=load(RedisSettings),
                claim_check=load(ClaimCheckSettings),
                topics=load(TopicSettings),
                health=Health(settings.watchdog_s),
            )
        except ConfigError as exc:
            print(f"steadyeye {name}: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        logs.configure(name, settings.log_level)
        tracing.configure(f"steadyeye-{name}", _version())
        server = serve(runtime.health, settings.http_host, settings.http_port)
        log.info("listening for probes and metrics on port %s", server.server_address[1])
        return runtime

    def redis(self) -> redis.Redis:
        return connect(self.redis_settings)

    def payloads(self) -> PayloadStore:
        return open_store(self.claim_check, self.redis)


def exit_if_unreachable(runtime: Runtime, make: Callable[[], T]) -> T:
    """Create a Kafka client, or stop with a clear error (the orchestrator restarts us)."""
    try:
        return make()
    except KafkaError as exc:
        servers = runtime.kafka.bootstrap_servers
        print(
            f"steadyeye {runtime.name}: cannot reach Kafka at {servers} ({exc}); "
            "check STEADYEYE_KAFKA_BOOTSTRAP_SERVERS and the broker",
            file=sys.stderr,
        )
        raise SystemExit(1) from None


def on_shutdown(stop: Callable[[], None]) -> None:
    """First SIGTERM/SIGINT drains; a second one exits at once."""

    def handler(signum: int, _frame: object) -> None:
        if getattr(handler, "fired", False):
            log.warning("second signal %s: exiting without draining", signum)
            raise SystemExit(130)
        handler.fired = True  # type: ignore[attr-defined]
        log.info("signal %s: draining", signum)
        # Not stop() here: the handler runs on the main thread, which may be inside
        # Event.wait() holding the event's lock; setting the event from here would deadlock.
        threading.Thread(target=stop, name="shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_consumer(
    name: str,
    settings_type: type[S],
    inputs: Callable[[TopicSettings], str | Inputs],
    build: Callable[[Runtime[S]], Handler],
) -> None:
    """The whole life of a consuming service: start, loop until SIGTERM, drain, exit 0.

    inputs: the input topic, whose records are the handler's input_type; or, for a service
    of several topics, each topic and the protobuf type its records carry.
    """
    runtime = Runtime.start(name, settings_type)
    handler = build(runtime)
    topics = inputs(runtime.topics)
    types = {topics: handler.input_type} if isinstance(topics, str) else dict(topics)
    # Ready once the group join completed (possibly with no partitions, when there are more
    # replicas than partitions), so nothing is sent before someone is listening.
    runtime.health.set("joined", False)
    consumer = exit_if_unreachable(
        runtime,
        lambda: kafka.consumer(
            runtime.kafka,
            f"steadyeye-{name}",
            list(types),
            on_assigned=lambda _: (runtime.health.set("joined", True), handler.reload_state()),
        ),
    )
    loop = ConsumerLoop(
        service=name,
        handler=handler,
        consumer=consumer,
        producer=exit_if_unreachable(runtime, lambda: kafka.producer(runtime.kafka)),
        deadletter_topic=runtime.topics.deadletter,
        health=runtime.health,
        max_poll_records=runtime.kafka.max_poll_records,
        inputs=types,
    )
    on_shutdown(loop.stop)
    try:
        loop.run()
    finally:
        tracing.shutdown()
    log.info("drained and committed; bye")


def replica_id() -> str:
    """This process among its service's replicas: host (the pod's name) and pid."""
    return f"{socket.gethostname()}-{os.getpid()}"
