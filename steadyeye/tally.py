"""Reads the pipeline's topics from the outside, as a downstream consumer would, and sums up."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from services.core.messages import decode
from steadyeye.v1.alerts_pb2 import Alert, AlertState
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.frames_pb2 import Frame
from steadyeye.v1.tracks_pb2 import Tracks, TrackState


@dataclass
class Tally:
    camera_id: str
    ingested: set[int] = field(default_factory=set)
    detected: set[int] = field(default_factory=set)
    duplicates: int = 0
    by_class: Counter[str] = field(default_factory=Counter)
    frames_with: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    captured_at: list[float] = field(default_factory=list)  # epoch s, one per latencies_ms
    deadlettered: int = 0
    tracked: set[int] = field(default_factory=set)  # frame ids seen on the tracks topic
    tracks_started: set[int] = field(default_factory=set)
    tracks_ended: set[int] = field(default_factory=set)
    alerts: dict[str, Alert] = field(default_factory=dict)  # by alert_id: replays count once
    first_at: float | None = None
    last_at: float | None = None

    def add_frame(self, frame: Frame) -> None:
        if frame.ref.camera_id == self.camera_id:
            self.ingested.add(frame.ref.frame_id)

    def add_detections(self, message: Detections, received_at: float) -> None:
        ref = message.ref
        if ref.camera_id != self.camera_id:
            return
        if ref.frame_id in self.detected:
            self.duplicates += 1  # at-least-once: a redelivery, counted once
            return
        self.detected.add(ref.frame_id)
        self.first_at = self.first_at or received_at
        self.last_at = received_at
        captured_at = ref.capture_time.ToNanoseconds() / 1e9
        self.captured_at.append(captured_at)
        self.latencies_ms.append((received_at - captured_at) * 1000)
        names = [d.class_name for d in message.detections]
        self.by_class.update(names)
        self.frames_with.update(set(names))

    def add_tracks(self, message: Tracks) -> None:
        if message.ref.camera_id != self.camera_id:
            return
        self.tracked.add(message.ref.frame_id)
        for track in message.tracks:
            if track.state == TrackState.TRACK_STATE_STARTED:
                self.tracks_started.add(track.track_id)
            elif track.state == TrackState.TRACK_STATE_ENDED:
                self.tracks_ended.add(track.track_id)

    def add_alert(self, alert: Alert) -> bool:
        """True when the alert is new (not a redelivery)."""
        if alert.ref.camera_id != self.camera_id or alert.alert_id in self.alerts:
            return False
        self.alerts[alert.alert_id] = alert
        return True

    @property
    def fps(self) -> float:
        if self.first_at is None or self.last_at is None or len(self.detected) < 2:
            return 0.0
        return (len(self.detected) - 1) / max(self.last_at - self.first_at, 1e-9)

    def percentiles(self) -> dict[str, float]:
        if not self.latencies_ms:
            return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
        p50, p95, p99 = np.percentile(self.latencies_ms, [50, 95, 99])
        return {"p50": round(p50, 1), "p95": round(p95, 1), "p99": round(p99, 1)}

    def summary(self) -> dict:
        detected = len(self.detected)
        return {
            "camera_id": self.camera_id,
            "frames_ingested": len(self.ingested),
            "frames_detected": detected,
            "frames_lost": len(self.ingested - self.detected),
            "frames_tracked": len(self.tracked),
            "duplicates": self.duplicates,
            "frames_dead_lettered": self.deadlettered,
            "detections_by_class": dict(self.by_class.most_common()),
            "frames_with_class": {
                name: round(n / detected, 3) for name, n in self.frames_with.most_common()
            },
            "latency_ms": self.percentiles(),
            "tracks_started": len(self.tracks_started),
            "tracks_ended": len(self.tracks_ended),
            "alerts_by_rule": dict(
                # A drift episode's resolution is not a second alert of its rule.
                Counter(
                    a.rule_id
                    for a in self.alerts.values()
                    if a.state != AlertState.ALERT_STATE_RESOLVED
                ).most_common()
            ),
            "fps": round(self.fps, 1),
        }


class TopicReader:
    """A group-less consumer of whole topics from the beginning (no offsets of its own)."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)

    def records(self) -> list[ConsumerRecord]:
        """What is there now (waiting up to 0.2 s for something)."""
        batch = self._consumer.poll(timeout_ms=200, max_records=500)
        return [record for records in batch.values() for record in records]

    def poll_into(
        self,
        tally: Tally,
        topics: dict[str, str],
        on_alert: Callable[[Alert], None],
        on_message: Callable[[Frame | Tracks], None] | None = None,
    ) -> int:
        """Read what is there; returns the number of records. `topics` maps role -> name.
        `on_message` also sees every frame and tracks message, redeliveries included (the
        demo's report draws them)."""
        batch = self.records()
        now = time.time()
        for record in batch:
            if record.topic == topics["frames"]:
                frame = decode(record.value, record.headers, Frame)
                tally.add_frame(frame)
                if on_message:
                    on_message(frame)
            elif record.topic == topics["detections"]:
                tally.add_detections(decode(record.value, record.headers, Detections), now)
            elif record.topic == topics["tracks"]:
                tracks = decode(record.value, record.headers, Tracks)
                tally.add_tracks(tracks)
                if on_message:
                    on_message(tracks)
            elif record.topic == topics["alerts"]:
                alert = decode(record.value, record.headers, Alert)
                if tally.add_alert(alert):
                    on_alert(alert)
            elif record.topic == topics["deadletter"]:
                tally.deadlettered += 1
        return len(batch)

    def close(self) -> None:
        self._consumer.close()
