"""Tracks and drift events -> Alerts. The engine is pure logic; this handler does the I/O:
per-camera engine state and camera last-seen times in Redis (so replicas and restarts continue),
dedupe of alert ids in Redis (so a replay never re-sends), snapshots of the firing frame. Webhook
delivery is a service of its own (services/webhook), so a dead endpoint never delays alerts."""

from __future__ import annotations

import dataclasses
import logging
import time

import cv2
import numpy as np
import redis
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace
from prometheus_client import Counter

from services.alert.rules import (
    AlertEngine,
    DriftObservation,
    Firing,
    FrameObservation,
    SignalObs,
    TrackObs,
)
from services.core.claimcheck import PayloadStore
from services.core.errors import PoisonMessage, TransientError
from services.core.handler import Handler, Inputs
from services.core.messages import Output
from services.core.payload_keys import frame_key
from services.core.settings import TopicSettings
from services.core.statestore import StateStore
from services.core.tracks import detected
from steadyeye.v1.alerts_pb2 import Alert, AlertState, Severity
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.drift_pb2 import DriftEvent, DriftState
from steadyeye.v1.tracks_pb2 import Tracks

log = logging.getLogger(__name__)
# Resolutions are not counted: per rule, one alert per episode, as before drift rules.
alerts_total = Counter("steadyeye_alerts_total", "Alerts published", ["camera", "rule"])
SENT_TTL_S = 7 * 24 * 3600  # dedupe horizon for replays
SNAPSHOT_TTL_S = 7 * 24 * 3600
LAST_SEEN_KEY = "steadyeye:alert:last_seen"
SEVERITIES = {
    "info": Severity.SEVERITY_INFO,
    "warning": Severity.SEVERITY_WARNING,
    "critical": Severity.SEVERITY_CRITICAL,
}


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def to_observation(message: Tracks) -> FrameObservation:
    """The engine's view of a Tracks message: the tracks seen in its frame (an ended track has
    left; a coasted one was not seen, and the rules keep it as they keep any unseen track)."""
    quality = message.quality if message.HasField("quality") else None
    return FrameObservation(
        camera_id=message.ref.camera_id,
        frame_id=message.ref.frame_id,
        capture_time=message.ref.capture_time.ToNanoseconds() / 1e9,
        tracks=tuple(
            TrackObs(
                t.track_id,
                t.detection.class_name,
                (t.detection.box.x1, t.detection.box.y1, t.detection.box.x2, t.detection.box.y2),
                t.detection.score,
            )
            for t in detected(message)
        ),
        brightness=quality.brightness if quality else None,
        sharpness=quality.sharpness if quality else None,
    )


def inputs(topics: TopicSettings) -> Inputs:
    """What alert reads: tracked frames for most rules, drift episodes for drift rules."""
    return {topics.tracks: Tracks, topics.drift: DriftEvent}


def to_drift(message: DriftEvent) -> DriftObservation:
    if message.state not in (DriftState.DRIFT_STATE_STARTED, DriftState.DRIFT_STATE_ENDED):
        raise PoisonMessage(f"drift event {message.event_id[:100]!r} neither started nor ended")
    if not message.event_id:
        raise PoisonMessage("drift event without event_id")  # alert ids derive from it
    return DriftObservation(
        camera_id=message.ref.camera_id,
        event_id=message.event_id,
        started=message.state == DriftState.DRIFT_STATE_STARTED,
        frame_id=message.ref.frame_id,
        capture_time=message.ref.capture_time.ToNanoseconds() / 1e9,
        signals=tuple(
            SignalObs(s.name, s.statistic, s.threshold, s.value, s.reference)
            for s in message.signals
        ),
        also_moving=tuple(message.also_moving),
        episode_start_frame_id=message.episode_start_frame_id,
        note=message.note,
    )


def _state(firing: Firing) -> AlertState.ValueType:
    if firing.resolves:
        return AlertState.ALERT_STATE_RESOLVED
    return (
        AlertState.ALERT_STATE_FIRING if firing.resolvable else AlertState.ALERT_STATE_UNSPECIFIED
    )


class AlertHandler(Handler):
    def __init__(
        self,
        engine: AlertEngine,
        client: redis.Redis,
        payloads: PayloadStore,
        output_topic: str,
    ) -> None:
        self._engine = engine
        self._redis = client
        self._payloads = payloads
        self._store = StateStore(client, "alert")
        self._topic = output_topic
        self._loaded: set[str] = set()
        self._dirty: dict[str, float] = {}  # camera -> capture time of its latest frame
        self._sent: dict[str, float] = {}  # alert ids published in this batch: first_seen

    def handle(self, message: Tracks | DriftEvent) -> list[Output]:
        ref = message.ref
        camera_id = ref.camera_id
        if camera_id not in self._engine.camera_ids:
            return []  # no rules for this camera
        if isinstance(message, DriftEvent):
            return self._drift(message)
        self._load(camera_id)
        observation = to_observation(message)
        firings = self._engine.observe(observation)
        trace.get_current_span().set_attribute("steadyeye.alert_count", len(firings))
        self._dirty[camera_id] = max(observation.capture_time, self._dirty.get(camera_id, 0.0))
        return [out for f in firings for out in self._publish(f, ref)]

    def _drift(self, message: DriftEvent) -> list[Output]:
        """Drift rules change no engine state (nothing to load or save); the snapshot is of the
        frame that started, or ended, the episode."""
        outputs = []
        for firing in self._engine.observe_drift(to_drift(message)):
            if firing.resolves:
                firing = self._resolution(firing)
            if firing is not None:
                outputs += self._publish(firing, message.ref)
        trace.get_current_span().set_attribute("steadyeye.alert_count", len(outputs))
        return outputs

    def _resolution(self, firing: Firing) -> Firing | None:
        """A resolution goes out only after the alert it resolves (a rule whose signals did not
        move sent none), and spans its episode: first_seen is the firing's, kept with its id."""
        started = self._sent.get(firing.resolves)
        if started is None:
            value = self._redis.get(f"steadyeye:alert:sent:{firing.resolves}")
            if value is None:
                return None
            started = float(value)
        return dataclasses.replace(firing, first_seen=started)

    def tick(self) -> list[Output]:
        try:
            raw = self._redis.hgetall(LAST_SEEN_KEY)
        except redis.RedisError as exc:
            raise TransientError(f"redis unavailable reading last-seen times: {exc}") from exc
        last_seen = {k.decode(): float(v) for k, v in raw.items()}
        for camera_id in last_seen:
            if camera_id in self._engine.camera_ids:
                self._load(camera_id)
        firings = self._engine.check_silence(last_seen, time.time())
        for firing in firings:
            self._dirty.setdefault(firing.camera_id, last_seen[firing.camera_id])
        return [
            out
            for f in firings
            for out in self._publish(f, FrameRef(camera_id=f.camera_id, frame_id=f.frame_id))
        ]

    def _load(self, camera_id: str) -> None:
        if camera_id not in self._loaded:
            state = self._store.load(camera_id)
            try:
                if state:
                    self._engine.load_state(camera_id, state)
            except ValueError as exc:  # an older format: start fresh rather than fail forever
                log.warning("camera %s: discarding alert-engine snapshot: %s", camera_id, exc)
            self._loaded.add(camera_id)

    def _publish(self, firing: Firing, ref: FrameRef) -> list[Output]:
        key = f"steadyeye:alert:sent:{firing.alert_id}"
        if firing.alert_id in self._sent or self._redis.exists(key):
            return []  # already published: in this batch, before a restart, by another replica
        alert = Alert(
            alert_id=firing.alert_id,
            rule_id=firing.rule_id,
            severity=SEVERITIES.get(firing.severity, Severity.SEVERITY_UNSPECIFIED),
            ref=ref,
            track_ids=firing.track_ids,
            first_seen=_timestamp(firing.first_seen),
            last_seen=_timestamp(firing.last_seen),
            message=firing.message,
            snapshot_key=self._snapshot(firing, ref),
            state=_state(firing),
            resolves=firing.resolves,
        )
        self._sent[firing.alert_id] = firing.first_seen
        if not firing.resolves:
            alerts_total.labels(firing.camera_id, firing.rule_id).inc()
        return [Output(self._topic, firing.camera_id, alert)]

    def _snapshot(self, firing: Firing, ref: FrameRef) -> str:
        """A JPEG of the frame that fired, kept longer than the frame's claim-check."""
        data = self._payloads.find(frame_key(ref.camera_id, ref.frame_id))
        if not data:
            return ""  # small frames travel inline in Kafka, or the frame has expired
        if ref.width and ref.height and len(data) == ref.width * ref.height * 3:
            image = np.frombuffer(data, np.uint8).reshape(ref.height, ref.width, 3)
            data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1]
        data = memoryview(data).cast("B")  # a JPEG either way: Redis takes the buffer as it is
        key = f"steadyeye:snapshot:{firing.alert_id}.jpg"
        self._redis.set(key, data, ex=SNAPSHOT_TTL_S)
        return key

    def before_commit(self) -> None:
        """After the alerts are flushed: remember them as sent (with when their episode began,
        which a resolution reports), then save engine state."""
        with self._redis.pipeline(transaction=False) as pipe:
            for alert_id, first_seen in self._sent.items():
                pipe.set(f"steadyeye:alert:sent:{alert_id}", repr(first_seen), ex=SENT_TTL_S)
            if self._dirty:
                pipe.hset(LAST_SEEN_KEY, mapping={c: repr(t) for c, t in self._dirty.items()})
            pipe.execute()
        self._store.save_many({c: self._engine.to_state(c) for c in self._dirty})
        self._sent.clear()
        self._dirty.clear()

    def reload_state(self) -> None:
        self._loaded.clear()  # reload each camera's engine state from its last snapshot
        # A rewound batch's alerts may not have reached the broker: handled again, they are
        # published again, so they must not be recorded as sent now.
        self._sent.clear()
