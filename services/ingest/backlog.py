"""Backpressure for ingest: how many frames wait between ingest and inference.

Kafka would buffer a slow pipeline's input without limit (and Redis would hold every waiting
frame's pixels), so ingest watches the consumer-group lag of the hops up to inference and,
above a limit, file sources pause and live sources keep only their newest frames.
"""

from __future__ import annotations

import logging
import threading

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError
from prometheus_client import Gauge

from services.core.kafka import client_options
from services.core.settings import KafkaSettings

log = logging.getLogger(__name__)

backlog_frames = Gauge(
    "steadyeye_ingest_backlog_frames", "Frames published but not yet taken by inference"
)


class Backlog(threading.Thread):
    """Measures the lag of each (group, topic) every `interval_s`; frames published since a
    measurement began are added to it, so a fast source cannot overshoot between two
    measurements. No room until the first measurement; with `limit` 0 always room."""

    def __init__(
        self,
        settings: KafkaSettings,
        hops: dict[str, str],
        limit: int,
        interval_s: float,
        stop: threading.Event,
    ) -> None:
        super().__init__(name="backlog", daemon=True)
        self._settings = settings
        self._hops = hops  # consumer group -> the topic it consumes
        self.limit = limit
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
        frames = self.frames
        return self.limit <= 0 or (frames is not None and frames < self.limit)

    def published(self) -> None:
        with self._lock:
            self._since += 1

    def wait_for_room(self) -> bool:
        """Block until the backlog is under the limit; False when stopping."""
        while not self.has_room:
            if self._stopping.wait(0.05):
                return False
        return not self._stopping.is_set()

    def run(self) -> None:
        if self.limit <= 0:
            return
        options = client_options(self._settings)
        admin: KafkaAdminClient | None = None
        offsets: KafkaConsumer | None = None
        paused = False
        try:
            while not self._stopping.is_set():
                with self._lock:
                    since_before = self._since
                try:
                    if admin is None or offsets is None:  # created here: the broker may be away
                        admin = KafkaAdminClient(**options)
                        offsets = KafkaConsumer(
                            **options,
                            enable_auto_commit=False,
                            fetch_max_wait_ms=10,
                            max_partition_fetch_bytes=1,  # after the high watermark, not data
                        )
                    measured = self._measure(admin, offsets)
                except KafkaError as exc:  # broker away: keep the last figure, retry
                    log.debug("cannot measure the backlog: %s", exc)
                else:
                    with self._lock:  # what was published while measuring may not be in it
                        self._since -= since_before
                        self._measured = measured
                    backlog_frames.set(measured)
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
            for client in (admin, offsets):
                if client is not None:
                    client.close()

    def _measure(self, admin: KafkaAdminClient, offsets: KafkaConsumer) -> int:
        hops = {
            group: [
                TopicPartition(topic, p) for p in sorted(offsets.partitions_for_topic(topic) or ())
            ]
            for group, topic in self._hops.items()
        }
        ends = _ends(offsets, [tp for partitions in hops.values() for tp in partitions])
        total = 0
        for group, partitions in hops.items():
            if not partitions:
                continue
            committed = admin.list_group_offsets({group: partitions}).get(group, {})
            done = {tp: committed[tp].offset for tp in partitions if tp in committed}
            # Where the group has committed nothing yet it starts at the log's beginning, asked
            # for those partitions only: once a group commits, no request for it.
            unstarted = [tp for tp in partitions if done.get(tp, -1) < 0]
            done.update(offsets.beginning_offsets(unstarted) if unstarted else {})
            total += sum(max(0, ends[tp] - done[tp]) for tp in partitions)
        return total


def _ends(offsets: KafkaConsumer, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """Each partition's end. The listed end offsets, raised to the high watermark a fetch from
    there reports: the embedded broker (Tansu 0.6) lists the last batch's base offset + 1, so a
    batch of 30 frames would count as one; with Apache Kafka the two agree."""
    if set(offsets.assignment()) != set(partitions):
        offsets.assign(partitions)
    listed = offsets.end_offsets(partitions)
    for tp, end in listed.items():
        offsets.seek(tp, end)
    offsets.poll(timeout_ms=50)
    return {tp: max(end, offsets.highwater(tp) or 0) for tp, end in listed.items()}
