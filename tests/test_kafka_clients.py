"""The core loop's contract holds with either Kafka client (`STEADYEYE_KAFKA_CLIENT`), against
the real broker: every output once, poison to the dead-letter topic with its reason, a
transient failure retried, offsets committed to the end, the partition's end known, and a
camera's records in one partition whichever client produced them. Also ingest's backlog
against the embedded broker's end offsets, and `steadyeye bench kafka`."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError

from services.core import kafka
from services.core.errors import PoisonMessage, TransientError
from services.core.handler import Handler
from services.core.health import Health
from services.core.loop import ConsumerLoop
from services.core.messages import Output, header, schema_headers
from services.core.settings import KafkaSettings
from services.ingest.backlog import Backlog
from steadyeye.embedded.stack import Stack
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.tracks_pb2 import Tracks
from tests.conftest import wait_for

CLIENTS = ["librdkafka", "kafka-python"]
FRAMES = 30
POISON = {7}
TRANSIENT_ONCE = {12, 20}


class Relay(Handler):
    """Passes each Tracks message on; scripted frames fail once (transient) or always (poison)."""

    input_type = Tracks

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.transient = set(TRANSIENT_ONCE)
        self.handled: list[int] = []

    def handle(self, message: Tracks) -> list[Output]:
        frame_id = message.ref.frame_id
        self.handled.append(frame_id)
        if frame_id in POISON:
            raise PoisonMessage(f"frame {frame_id} is scripted to be poison")
        if frame_id in self.transient:
            self.transient.discard(frame_id)
            raise TransientError(f"frame {frame_id} fails once")
        return [Output(self.topic, message.ref.camera_id, message)]


@pytest.fixture
def topics(stack: Stack) -> dict[str, str]:
    names = {role: f"clients-{role}-{uuid.uuid4().hex[:8]}" for role in ("in", "out", "dlq")}
    admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap)
    admin.create_topics([NewTopic(name, 2, 1) for name in names.values()])
    admin.close()
    return names


def settings(stack: Stack, client: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=stack.bootstrap,
        client=client,
        max_poll_interval_ms=stack.settings.kafka_max_poll_interval_ms,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )


def send(bootstrap: str, topic: str, frames: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)  # a few large batches
    for frame_id in range(frames):
        message = Tracks(ref=FrameRef(camera_id=f"cam-{frame_id % 3}", frame_id=frame_id))
        producer.send(
            topic,
            key=message.ref.camera_id.encode(),
            value=message.SerializeToString(),
            headers=schema_headers(message),
        )
    producer.flush()
    producer.close()


def read_all(bootstrap: str, topic: str, count: int, timeout_s: float = 30) -> list:
    reader = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    reader.assign([TopicPartition(topic, p) for p in (0, 1)])
    records: list = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        for batch in reader.poll(timeout_ms=200).values():
            records += batch
    reader.close()
    return records


@pytest.mark.parametrize("client", CLIENTS)
def test_the_loop_relays_every_frame_once_with_either_client(stack, topics, client) -> None:
    config = settings(stack, client)
    send(stack.bootstrap, topics["in"], FRAMES)

    group = f"clients-{uuid.uuid4().hex[:8]}"
    joined = threading.Event()
    consumer = kafka.consumer(config, group, [topics["in"]], on_assigned=lambda _: joined.set())
    handler = Relay(topics["out"])
    loop = ConsumerLoop(
        "test", handler, consumer, kafka.producer(config), topics["dlq"], Health(60), 8
    )
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        outputs = read_all(stack.bootstrap, topics["out"], FRAMES - len(POISON), timeout_s=60)
        dead = read_all(stack.bootstrap, topics["dlq"], len(POISON))
        # the loop commits after flushing: wait for the last commit before asking
        assert wait_for(lambda: _committed(stack.bootstrap, group, topics["in"]) == FRAMES, 15)
    finally:
        loop.stop()
        thread.join(timeout=30)

    out_ids = sorted(Tracks.FromString(r.value).ref.frame_id for r in outputs)
    assert out_ids == sorted(set(range(FRAMES)) - POISON)  # each once, none lost
    assert joined.is_set()
    assert [Tracks.FromString(r.value).ref.frame_id for r in dead] == sorted(POISON)
    assert b"scripted to be poison" in header(dead[0].headers, "x-deadletter-reason")
    for frame_id in TRANSIENT_ONCE:
        assert handler.handled.count(frame_id) >= 2  # failed, rewound, handled again


@pytest.mark.parametrize("client", CLIENTS)
def test_the_consumer_knows_each_partitions_end_once_it_has_fetched(stack, topics, client):
    """The watchdog's "input waiting" compares these ends with the loop's next offsets."""
    send(stack.bootstrap, topics["in"], FRAMES)
    consumer = kafka.consumer(settings(stack, client), uuid.uuid4().hex, [topics["in"]])
    received: dict[int, int] = {}
    deadline = time.monotonic() + 60
    while sum(received.values()) < FRAMES and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=200, max_records=8).items():
            received[tp.partition] = received.get(tp.partition, 0) + len(records)
    ends = {tp.partition: consumer.highwater(tp) for tp in consumer.assignment()}
    consumer.close(autocommit=False)
    assert sum(received.values()) == FRAMES
    # librdkafka learns a partition's end from the records it fetches: an empty partition's
    # stays unknown (None), which the watchdog reads as "nothing waiting" — also true.
    for partition, end in ends.items():
        assert end == received.get(partition) or (end in (None, 0) and partition not in received)


def _committed(bootstrap: str, group: str, topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in (0, 1)]
        offsets = admin.list_group_offsets({group: partitions}).get(group, {})
    finally:
        admin.close()
    return sum(max(0, o.offset) for o in offsets.values())


@pytest.mark.parametrize("client", CLIENTS)
def test_a_poll_returns_what_has_arrived_without_waiting_for_a_full_batch(stack, topics, client):
    """A lone frame must not sit out the poll's timeout at every hop (librdkafka's consume(n)
    waits for n messages or the timeout: that cost the demo ~1 s of latency)."""
    consumer = kafka.consumer(settings(stack, client), uuid.uuid4().hex, [topics["in"]])
    deadline = time.monotonic() + 60
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(timeout_ms=100, max_records=32)
    send(stack.bootstrap, topics["in"], 1)
    started = time.monotonic()
    batch = consumer.poll(timeout_ms=20_000, max_records=32)
    waited = time.monotonic() - started
    consumer.close(autocommit=False)
    assert sum(len(records) for records in batch.values()) == 1
    assert waited < 10, f"{waited:.1f} s: the poll waited for more than it had"


def test_both_clients_put_a_camera_in_the_same_partition(stack, topics) -> None:
    """Per-camera order and the tracker's state ownership rest on one partition per camera;
    librdkafka's default partitioner would have put them elsewhere."""
    cameras = [f"camera-{i}" for i in range(20)]
    for client in CLIENTS:
        producer = kafka.producer(settings(stack, client))
        for camera in cameras:
            producer.send(topics["out"], key=camera.encode(), value=client.encode())
        producer.flush(timeout=30)
    records = read_all(stack.bootstrap, topics["out"], 2 * len(cameras))
    partitions: dict[bytes, set[int]] = {}
    for record in records:
        partitions.setdefault(record.key, set()).add(record.partition)
    assert len(records) == 2 * len(cameras)
    assert all(len(p) == 1 for p in partitions.values()), partitions
    assert len({p for ps in partitions.values() for p in ps}) == 2  # both partitions used


def test_an_unreachable_broker_fails_the_producer_at_construction() -> None:
    """As kafka-python's does (ingest has only a producer; consumers: test_settings_errors)."""
    started = time.monotonic()
    with pytest.raises(KafkaError, match=r"127\.0\.0\.1:9"):
        kafka.producer(KafkaSettings(bootstrap_servers="127.0.0.1:9", client="librdkafka"))
    assert time.monotonic() - started < 30


def test_ingest_backlog_counts_every_record_of_a_batch(stack, topics) -> None:
    """The embedded broker lists a partition's end as its last batch's base offset + 1; the
    backlog must still see all 30 frames waiting, or ingest would overshoot its limit."""
    send(stack.bootstrap, topics["in"], FRAMES)
    stop = threading.Event()
    backlog = Backlog(settings(stack, "kafka-python"), {"nobody": topics["in"]}, 1000, 0.1, stop)
    backlog.start()
    try:
        assert wait_for(lambda: backlog.frames is not None, 30)
        assert backlog.frames == FRAMES
    finally:
        stop.set()
        backlog.join(timeout=10)


def test_bench_kafka_relays_every_record_with_both_clients_and_prints_the_ratio() -> None:
    from steadyeye.bench.kafka import bench_kafka

    result = bench_kafka(records=40, rate=100.0, say=lambda _text: None)
    for client in CLIENTS:
        assert result[client]["cpu_ms_per_record"] > 0
    assert result["ratio_librdkafka_over_kafka_python"] > 0
