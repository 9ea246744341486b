"""Tracks -> Alerts. The engine is pure logic; this handler does the I/O: per-camera engine
state and camera last-seen times in Redis (so replicas and restarts continue), dedupe of alert
ids in Redis (so a replay never re-sends), snapshots of the firing frame. Webhook delivery is
a service of its own (services/webhook), so a dead endpoint never delays alerts."""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np
import redis
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace
from prometheus_client import Counter

from services.alert.rules import AlertEngine, Firing, FrameObservation, TrackObs
from services.core.claimcheck import PayloadStore
from services.core.errors import TransientError
from services.core.handler import Handler
from services.core.messages import Output
from services.core.payload_keys import frame_key
from services.core.statestore import StateStore
from steadyeye.v1.alerts_pb2 import Alert, Severity
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.tracks_pb2 import Tracks, TrackState

log = logging.getLogger(__name__)
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
    """The engine's view of a Tracks message: live tracks only (an ended track has left)."""
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
            for t in message.tracks
            if t.state != TrackState.TRACK_STATE_ENDED
        ),
        brightness=quality.brightness if quality else None,
        sharpness=quality.sharpness if quality else None,
    )


class AlertHandler(Handler):
    input_type = Tracks

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
        self._sent: list[str] = []  # alert ids published in this batch

    def handle(self, message: Tracks) -> list[Output]:
        ref = message.ref
        camera_id = ref.camera_id
        if camera_id not in self._engine.camera_ids:
            return []  # no rules for this camera
        self._load(camera_id)
        observation = to_observation(message)
        firings = self._engine.observe(observation)
        trace.get_current_span().set_attribute("steadyeye.alert_count", len(firings))
        self._dirty[camera_id] = max(observation.capture_time, self._dirty.get(camera_id, 0.0))
        return [out for f in firings for out in self._publish(f, ref)]

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
        if self._redis.exists(key):
            return []  # already published, by us before a restart or by another replica
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
        )
        self._sent.append(firing.alert_id)
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
        """After the alerts are flushed: remember them as sent, then save engine state."""
        with self._redis.pipeline(transaction=False) as pipe:
            for alert_id in self._sent:
                pipe.set(f"steadyeye:alert:sent:{alert_id}", 1, ex=SENT_TTL_S)
            if self._dirty:
                pipe.hset(LAST_SEEN_KEY, mapping={c: repr(t) for c, t in self._dirty.items()})
            pipe.execute()
        self._store.save_many({c: self._engine.to_state(c) for c in self._dirty})
        self._sent.clear()
        self._dirty.clear()

    def reload_state(self) -> None:
        self._loaded.clear()  # reload each camera's engine state from its last snapshot
