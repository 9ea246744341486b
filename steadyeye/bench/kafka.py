"""`steadyeye bench kafka`: the core loop's CPU per record with each Kafka client, in one run.

A feeder process sends small records at a camera-like rate; the real ConsumerLoop relays each
to an output topic (handle, produce, flush, commit), as every service does. Only the loop's
process CPU is counted. It prints figures and asserts nothing.
"""

from __future__ import annotations

import multiprocessing
import resource
import tempfile
import threading
import time
import uuid
from pathlib import Path

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from services.core import kafka
from services.core.handler import Handler
from services.core.health import Health
from services.core.loop import ConsumerLoop
from services.core.messages import Output, schema_headers
from services.core.settings import KafkaSettings
from steadyeye.embedded.stack import free_port, start_broker
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.tracks_pb2 import Tracks

CLIENTS = ("kafka-python", "librdkafka")


class _PassOn(Handler):
    input_type = Tracks

    def __init__(self, topic: str, records: int) -> None:
        self.topic = topic
        self.records = records
        self.handled = 0
        self.done = threading.Event()

    def handle(self, message: Tracks) -> list[Output]:
        return [Output(self.topic, message.ref.camera_id, message)]

    def after_commit(self, committed: list[Tracks]) -> None:
        self.handled += len(committed)
        if self.handled >= self.records:
            self.done.set()


def _feed(bootstrap: str, topic: str, records: int, rate: float) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    started = time.monotonic()
    for i in range(records):
        message = Tracks(ref=FrameRef(camera_id=f"cam-{i % 8}", frame_id=i))
        producer.send(
            topic,
            key=message.ref.camera_id.encode(),
            value=message.SerializeToString(),
            headers=schema_headers(message),
        )
        time.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
    producer.flush()
    producer.close()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def _relay(bootstrap: str, client: str, records: int, rate: float) -> dict:
    names = {role: f"bench-{role}-{uuid.uuid4().hex[:8]}" for role in ("in", "out", "dlq")}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, 4, 1) for name in names.values()])
    admin.close()
    # Tansu completes a group join only after the rebalance timeout: keep it short.
    settings = KafkaSettings(
        bootstrap_servers=bootstrap,
        client=client,
        max_poll_interval_ms=6000,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    joined = threading.Event()
    consumer = kafka.consumer(
        settings, f"bench-{uuid.uuid4().hex[:8]}", [names["in"]], lambda _: joined.set()
    )
    handler = _PassOn(names["out"], records)
    loop = ConsumerLoop(
        "bench",
        handler,
        consumer,
        kafka.producer(settings),
        names["dlq"],
        Health(60),
        settings.max_poll_records,
    )
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    if not joined.wait(60):
        raise RuntimeError(f"{client}: the consumer did not join its group in 60 s")
    feeder = multiprocessing.get_context("spawn").Process(
        target=_feed, args=(bootstrap, names["in"], records, rate)
    )
    cpu_before, started = _cpu_s(), time.monotonic()
    feeder.start()
    finished = handler.done.wait(records / rate + 60)
    cpu, elapsed = _cpu_s() - cpu_before, time.monotonic() - started
    loop.stop()
    thread.join(timeout=30)
    feeder.join(timeout=30)
    if not finished:
        raise RuntimeError(f"{client}: {handler.handled} of {records} records relayed")
    return {"cpu_ms_per_record": round(cpu * 1000 / records, 3), "seconds": round(elapsed, 1)}


def bench_kafka(records: int, rate: float, say) -> dict:
    port = free_port()
    broker = start_broker(port, Path(tempfile.mkdtemp(prefix="steadyeye-bench-kafka-")))
    try:
        result: dict = {"records": records, "rate_per_s": rate}
        for client in CLIENTS:
            say(f"relaying {records} records at {rate}/s with {client} ...")
            result[client] = _relay(f"127.0.0.1:{port}", client, records, rate)
    finally:
        broker.stop()
    result["ratio_librdkafka_over_kafka_python"] = round(
        result["librdkafka"]["cpu_ms_per_record"] / result["kafka-python"]["cpu_ms_per_record"], 3
    )
    return result
