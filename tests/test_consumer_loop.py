"""The shared consumer loop's bookkeeping, with stub Kafka clients (no broker needed): what is
committed, what a handler is told was committed, and when the watchdog calls the loop stalled.
The real-broker behaviour is covered by the pipeline and chaos suites."""

from __future__ import annotations

import threading
import time

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError

from services.core.errors import PoisonMessage, TransientError
from services.core.handler import Handler
from services.core.health import Health
from services.core.loop import ConsumerLoop
from services.core.messages import Output, header, schema_headers
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.drift_pb2 import DriftEvent
from steadyeye.v1.tracks_pb2 import Tracks

TP = TopicPartition("in", 0)


def record(offset: int, frame_id: int) -> ConsumerRecord:
    message = Tracks(ref=FrameRef(camera_id="cam", frame_id=frame_id))
    return ConsumerRecord(
        "in", 0, -1, offset, 0, 0, b"cam", message.SerializeToString(),
        schema_headers(message), None, 3, 0, 0,
    )  # fmt: skip


class StubConsumer:
    """Hands out scripted batches, then nothing; remembers commits and seeks."""

    def __init__(self, batches: list[list[ConsumerRecord]], highwater: int | None) -> None:
        self._batches = batches
        self._highwater = highwater
        self.commits: list[int] = []
        self.seeks: list[int] = []

    def poll(self, timeout_ms: int, max_records: int) -> dict:
        if self._batches:
            return {TP: self._batches.pop(0)}
        time.sleep(0.01)
        return {}

    def commit(self, offsets: dict) -> None:
        self.commits.append(offsets[TP].offset)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append(offset)

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def highwater(self, tp: TopicPartition) -> int | None:
        return self._highwater

    def close(self, autocommit: bool) -> None:
        pass


class _Sent:
    def failed(self) -> bool:
        return False


class StubProducer:
    """Acknowledges everything, except that the first `failures` flushes time out; remembers
    what was sent as (topic, headers)."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.sent: list[tuple[str, list]] = []

    def send(self, topic: str, headers: list | None = None, **_: object) -> _Sent:
        self.sent.append((topic, headers or []))
        return _Sent()

    def flush(self, timeout: float | None = None) -> None:
        if self.failures:
            self.failures -= 1
            raise KafkaTimeoutError("no acknowledgement")


class ScriptedHandler(Handler):
    """Fails the frame ids in `transient` with TransientError and those in `poison` with
    PoisonMessage, passes the others through."""

    input_type = Tracks

    def __init__(self, transient: set[int] = frozenset(), poison: set[int] = frozenset()) -> None:
        self.transient = set(transient)
        self.poison = set(poison)
        self.after_commit_ids: list[int] = []
        self.reloads = 0

    def handle(self, message: Tracks) -> list[Output]:
        if message.ref.frame_id in self.transient:
            raise TransientError("dependency down")
        if message.ref.frame_id in self.poison:
            raise PoisonMessage("bad record")
        return [Output("out", "cam", message)]

    def handle_batch(self, items):  # every item on its own, like inference's parallel requests
        results = []
        for item in items:
            try:
                results.append(self.handle(item.message))
            except (TransientError, PoisonMessage) as exc:
                results.append(exc)
        return results

    def after_commit(self, committed: list[Tracks]) -> None:
        self.after_commit_ids += [m.ref.frame_id for m in committed]

    def reload_state(self) -> None:
        self.reloads += 1


def test_only_committed_messages_are_reported_after_commit() -> None:
    """Frame 2 succeeded but sits behind frame 1's rewind point: it will be handled again, so
    the handler must not treat it as done (inference would delete its tensor)."""
    consumer = StubConsumer([[record(0, 0), record(1, 1), record(2, 2)]], highwater=3)
    handler = ScriptedHandler(transient={1})
    loop = ConsumerLoop("test", handler, consumer, StubProducer(), "dlq", Health(60), 32)
    threading.Timer(0.3, loop.stop).start()
    loop.run()
    assert consumer.commits[0] == 1
    assert consumer.seeks[0] == 1
    assert handler.after_commit_ids == [0]


def test_a_dead_lettered_message_is_committed_but_never_reported_as_handled() -> None:
    """Its offset is committed (the dead letter holds it), but the handler must not clean up
    what the bad record names: inference would delete whatever tensor key it carries."""
    consumer = StubConsumer([[record(0, 0), record(1, 1), record(2, 2)]], highwater=3)
    handler = ScriptedHandler(poison={1})
    loop = ConsumerLoop("test", handler, consumer, StubProducer(), "dlq", Health(60), 32)
    threading.Timer(0.3, loop.stop).start()
    loop.run()
    assert consumer.commits[0] == 3
    assert handler.after_commit_ids == [0, 2]


def test_a_batch_whose_outputs_were_not_acknowledged_is_rewound_and_state_reloaded() -> None:
    """The handler's in-memory state (a tracker) has moved past frames whose outputs never
    reached the broker: it must go back to the saved state, or the retry would find those
    frames already seen and drop them."""
    batch = [record(0, 0), record(1, 1)]
    consumer = StubConsumer([batch, batch], highwater=2)
    handler = ScriptedHandler()
    loop = ConsumerLoop("test", handler, consumer, StubProducer(failures=1), "dlq", Health(60), 32)
    threading.Timer(0.6, loop.stop).start()
    loop.run()
    assert consumer.seeks == [0]
    assert handler.reloads == 1
    assert consumer.commits == [2]
    assert handler.after_commit_ids == [0, 1]


@pytest.mark.parametrize(
    ("case", "batches", "transient", "highwater", "ready"),
    [
        ("idle, nothing waiting", [], set(), None, True),
        ("caught up with the partition's end", [[record(0, 0)]], set(), 1, True),
        ("stuck rewinding while records wait", [[record(0, 0)]] * 50, {0}, 1, False),
    ],
)
def test_watchdog_calls_the_loop_stalled_only_when_input_waits(
    case: str, batches: list, transient: set[int], highwater: int | None, ready: bool
) -> None:
    health = Health(watchdog_s=0.5)
    consumer = StubConsumer(list(batches), highwater)
    loop = ConsumerLoop(
        "test", ScriptedHandler(transient), consumer, StubProducer(), "dlq", health, 32
    )
    thread = threading.Thread(target=loop.run)
    thread.start()
    time.sleep(1.5)
    _, why = health.ready()
    loop.stop()
    thread.join(timeout=5)
    assert ("no progress" in why) is not ready, (case, why)


class TwoTopicConsumer(StubConsumer):
    """One scripted batch over several partitions, then stops the loop at its next poll (the
    batch is committed by then); commits remembered per partition."""

    def __init__(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        super().__init__([], highwater=None)
        self._batch = batch
        self.committed: dict[TopicPartition, int] = {}
        self.drained = lambda: None

    def poll(self, timeout_ms: int, max_records: int) -> dict:
        batch, self._batch = self._batch, {}
        if not batch:
            self.drained()
        return batch

    def commit(self, offsets: dict) -> None:
        self.committed.update({tp: meta.offset for tp, meta in offsets.items()})

    def assignment(self) -> set[TopicPartition]:
        return set(self.committed)


class TypeRecorder(Handler):
    """A handler of two topics: tells its messages apart by type, as the alert service does."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def handle(self, message: Tracks | DriftEvent) -> list[Output]:
        self.seen.append((type(message).__name__, message.ref.frame_id))
        return []


def record_on(topic: str, offset: int, message: Tracks | DriftEvent) -> ConsumerRecord:
    value = message.SerializeToString()
    return ConsumerRecord(
        topic, 0, -1, offset, 0, 0, b"cam", value, schema_headers(message), None, 3, len(value), 0
    )  # fmt: skip


def test_a_service_of_two_topics_decodes_each_record_by_its_topic() -> None:
    """Each topic's records decode to that topic's type; a record of another schema on a topic,
    or a record of a topic the service does not read, is dead-lettered with the reason and
    committed, and the rest carry on."""
    tracks = Tracks(ref=FrameRef(camera_id="cam", frame_id=1))
    drift = DriftEvent(event_id="e", ref=FrameRef(camera_id="cam", frame_id=2))
    batch = {
        TopicPartition("tracks", 0): [
            record_on("tracks", 0, tracks),
            record_on("tracks", 1, drift),  # another topic's schema
        ],
        TopicPartition("drift", 0): [record_on("drift", 0, drift)],  # the drift topic's type
        TopicPartition("other", 0): [record_on("other", 0, tracks)],  # not a subscribed topic
    }  # fmt: skip
    consumer, producer, handler = TwoTopicConsumer(batch), StubProducer(), TypeRecorder()
    loop = ConsumerLoop(
        "test", handler, consumer, producer, "dlq", Health(60), 32,
        inputs={"tracks": Tracks, "drift": DriftEvent},
    )  # fmt: skip
    consumer.drained = loop.stop
    loop.run()

    assert handler.seen == [("Tracks", 1), ("DriftEvent", 2)]
    reasons = {
        header(headers, "x-deadletter-source").decode(): header(headers, "x-deadletter-reason")
        for topic, headers in producer.sent
        if topic == "dlq"
    }
    assert reasons == {
        "tracks/0/1": b"unknown schema 'steadyeye.v1.DriftEvent': this service reads "
        b"steadyeye.v1.Tracks",
        "other/0/0": b"unexpected topic 'other': this service reads drift, tracks",
    }
    assert consumer.committed == {
        TopicPartition("tracks", 0): 2,
        TopicPartition("drift", 0): 1,
        TopicPartition("other", 0): 1,
    }
