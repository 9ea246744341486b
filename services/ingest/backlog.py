"""Backpressure for ingest: how many frames wait between ingest and inference.

Kafka would buffer a slow pipeline's input without limit (and Redis would hold every waiting
frame's pixels), so ingest watches the consumer-group lag of the hops up to inference and,
above a limit, file sources pause and live sources keep only their newest frames.
"""

from __future__ import annotations

import logging
import threading
import time

import confluent_kafka as ck
from kafka.errors import KafkaError
from prometheus_client import Gauge

from services.core.kafka import rdkafka_options
from services.core.settings import KafkaSettings

FIRST_FETCH_S = 2.0  # the most a new assignment waits for its first watermarks

log = logging.getLogger(__name__)

backlog_frames = Gauge(
    "steadyeye_ingest_backlog_frames", "Frames published but not yet taken by inference"
)
shedding = Gauge(
    "steadyeye_ingest_shedding",
    "1 while cameras of this priority give way (live: newest frames only; files: paused)",
    ["priority"],
)


class Backlog(threading.Thread):
    """Measures the lag of each (group, topic) every `interval_s`; frames published since a
    measurement began are added to it, so a fast source cannot overshoot between two
    measurements. No room until the first measurement; with `limit` 0 always room. A camera's
    priority has room up to its share of the limit (high: all of it)."""

    def __init__(
        self,
        settings: KafkaSettings,
        hops: dict[str, str],
        limit: int,
        interval_s: float,
        stop: threading.Event,
        shares: dict[str, float] | None = None,
    ) -> None:
        super().__init__(name="backlog", daemon=True)
        self._settings = settings
        self._hops = hops  # consumer group -> the topic it consumes
        self.limit = limit
        self._shares = shares or {"high": 1.0}
        self._interval_s = interval_s
        self._stopping = stop
        self._lock = threading.Lock()
        self._measured: int | None = None
        self._since = 0  # published since the current measurement began

    @property
    def frames(self) -> int | None:
        with self._lock:
            return None if self._measured is None else self._measured + self._since

    @property
    def has_room(self) -> bool:
        return self.has_room_for("high")

    def has_room_for(self, priority: str) -> bool:
        frames = self.frames
        limit = self.limit * self._shares.get(priority, 1.0)
        return self.limit <= 0 or (frames is not None and frames < limit)

    def published(self) -> None:
        with self._lock:
            self._since += 1

    def wait_for_room(self, priority: str = "high") -> bool:
        """Block until the backlog is under the priority's share of the limit; False when
        stopping."""
        while not self.has_room_for(priority):
            if self._stopping.wait(0.05):
                return False
        return not self._stopping.is_set()

    def run(self) -> None:
        if self.limit <= 0:
            return
        offsets: _Offsets | None = None
        paused = False
        try:
            while not self._stopping.is_set():
                with self._lock:
                    since_before = self._since
                try:
                    if offsets is None:  # created here: the broker may be away
                        offsets = _Offsets(self._settings, self._hops, self._interval_s)
                    measured = offsets.measure()
                except (KafkaError, ck.KafkaException) as exc:  # broker away: keep the last
                    log.debug("cannot measure the backlog: %s", exc)  # figure, retry
                else:
                    with self._lock:  # what was published while measuring may not be in it
                        self._since -= since_before
                        self._measured = measured
                    backlog_frames.set(measured)
                    for priority in self._shares:
                        shedding.labels(priority).set(0 if self.has_room_for(priority) else 1)
                    if paused != (not self.has_room):
                        paused = not paused
                        log.info(
                            "backlog %d frames, limit %d: %s",
                            measured,
                            self.limit,
                            "pausing" if paused else "resuming",
                        )
                self._stopping.wait(self._interval_s)
        finally:
            if offsets is not None:
                offsets.close()


class _Offsets:
    """librdkafka clients (kafka-python cost 2% of a core measuring twice a second): one
    assigned to every partition the hops consume, whose fetches keep each partition's high
    watermark current, and one per group to read what the group committed.

    Why fetches and not the listed end offsets: the embedded broker (Tansu 0.6) lists a
    partition's end as its last batch's base offset + 1, so a batch of 30 frames would count as
    one; a fetch reports the true high watermark. With Apache Kafka the two agree."""

    def __init__(self, settings: KafkaSettings, hops: dict[str, str], interval_s: float) -> None:
        options = rdkafka_options(settings)
        self._hops = hops
        self._watch = ck.Consumer(
            {
                **options,
                "group.id": "steadyeye-ingest-backlog",  # never joined: assigned by hand
                "enable.auto.commit": False,
                # One answer per half interval, not one per record: the broker holds a fetch
                # until a MiB arrived or the wait is over. Its records are skipped unread.
                "fetch.wait.max.ms": max(10, int(interval_s * 500)),
                "fetch.min.bytes": 1024 * 1024,
                "queued.max.messages.kbytes": 1024,
            },
            logger=log,
        )
        self._groups = {
            group: ck.Consumer(
                {**options, "group.id": group, "enable.auto.commit": False}, logger=log
            )
            for group in hops
        }
        self._assigned: set[tuple[str, int]] = set()

    def measure(self) -> int:
        hops = {group: self._partitions(topic) for group, topic in self._hops.items()}
        wanted = {tp for partitions in hops.values() for tp in partitions}
        if wanted != self._assigned:
            self._watch.assign([ck.TopicPartition(t, p, ck.OFFSET_END) for t, p in wanted])
            self._assigned = wanted
            self._await_first_fetch(wanted)
        self._watch.consume(1_000_000, 0)  # drop what was fetched; the watermarks stay
        total = 0
        for group, partitions in hops.items():
            if not partitions:
                continue
            asked = [ck.TopicPartition(t, p) for t, p in partitions]
            for committed in self._groups[group].committed(asked, timeout=5):
                start, end = self._watch.get_watermark_offsets(committed, cached=True)
                if end < 0 or (committed.offset < 0 and start < 0):  # not fetched yet: ask
                    start, end = self._watch.get_watermark_offsets(committed, timeout=5)
                # Where the group has committed nothing it starts at the log's beginning.
                done = committed.offset if committed.offset >= 0 else start
                total += max(0, end - done)
        return total

    def _await_first_fetch(self, wanted: set[tuple[str, int]]) -> None:
        """Right after an assignment only the listed ends are known, which the embedded broker
        undercounts: wait (bounded) for the first fetch answers of the partitions that hold
        records, so the first figure is already true. Empty ones list 0, which is exact."""
        waiting = [
            ck.TopicPartition(t, p)
            for t, p in wanted
            if self._watch.get_watermark_offsets(ck.TopicPartition(t, p), timeout=5)[1] > 0
        ]
        deadline = time.monotonic() + FIRST_FETCH_S
        while waiting and time.monotonic() < deadline:
            self._watch.consume(1_000_000, 0.05)
            waiting = [tp for tp in waiting
                       if self._watch.get_watermark_offsets(tp, cached=True)[1] < 0]  # fmt: skip

    def _partitions(self, topic: str) -> list[tuple[str, int]]:
        metadata = self._watch.list_topics(topic, timeout=5).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        return [(topic, p) for p in sorted(metadata.partitions)]

    def close(self) -> None:
        for client in (self._watch, *self._groups.values()):
            client.close()
