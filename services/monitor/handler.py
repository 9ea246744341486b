"""Detections -> drift events: one CameraMonitor per camera, its state snapshotted to Redis at
each commit (like the tracker's) so a restarted or rebalanced monitor keeps its reference and
its running test, and a replay opens no second episode. Operators' commands (control.py) are
applied by whichever replica owns the camera; a point of each camera's signals goes to its
history every few frames."""

from __future__ import annotations

import dataclasses
import logging
from zoneinfo import ZoneInfo

import redis
from opentelemetry import trace
from prometheus_client import Counter, Gauge

from services.core.errors import TransientError
from services.core.handler import Handler
from services.core.messages import Output
from services.core.statestore import StateStore
from services.monitor import control
from services.monitor.camera import CameraMonitor, Change, Point, Reference
from services.monitor.settings import MonitorSettings, bucket_of_hour, parse_buckets
from services.monitor.signals import NAMES
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.detections_pb2 import Detections, ModelRef
from steadyeye.v1.drift_pb2 import DriftEvent, DriftState, SignalDrift

log = logging.getLogger(__name__)
statistic_gauge = Gauge(
    "steadyeye_drift_statistic", "CUSUM statistic per camera and signal", ["camera", "signal"]
)
threshold_gauge = Gauge(
    "steadyeye_drift_threshold",
    "Its calibrated threshold per camera and signal",
    ["camera", "signal"],
)
active_gauge = Gauge("steadyeye_drift_active", "1 while a drift episode is open", ["camera"])
episodes_total = Counter("steadyeye_drift_episodes_total", "Drift episodes started", ["camera"])
# Snapshot a warm-up in progress (~240 KB at 500 frames) every so many frames, not at every
# commit: a crash costs the reference at most these frames, which the warm-up then takes again.
WARMUP_SAVE_EVERY = 50
# Calibrations per batch: each takes ~2 s of CPU (docs/performance.md), and cameras that start
# together must not hold the loop past Kafka's poll interval; the others wait a batch, their
# warm-up sliding on.
CALIBRATIONS_PER_BATCH = 1
STARTED, ENDED = DriftState.DRIFT_STATE_STARTED, DriftState.DRIFT_STATE_ENDED


class MonitorHandler(Handler):
    input_type = Detections

    def __init__(self, client: redis.Redis, output_topic: str, settings: MonitorSettings) -> None:
        self._redis = client
        self._store = StateStore(client, "monitor")
        self._topic = output_topic
        self._settings = settings
        self._buckets = parse_buckets(settings.time_buckets)
        self._zone = ZoneInfo(settings.timezone)
        self._monitors: dict[str, CameraMonitor] = {}
        self._dirty: set[str] = set()
        self._history: list[tuple[str, Point]] = []
        self._applied: list[str] = []  # cameras whose command is applied, deleted once saved
        self._calibrations_left = CALIBRATIONS_PER_BATCH

    def _monitor(self, camera_id: str) -> CameraMonitor:
        monitor = self._monitors.get(camera_id)
        if monitor is None:
            state = self._store.load(camera_id)
            monitor = CameraMonitor(camera_id, self._settings)
            if state:
                try:
                    monitor = CameraMonitor.from_state(camera_id, self._settings, state)
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("camera %s: discarding monitor snapshot: %s", camera_id, exc)
            self._monitors[camera_id] = monitor
        return monitor

    def _bucket(self, ref: FrameRef) -> str:
        if not self._buckets:
            return ""
        hour = ref.capture_time.ToDatetime(tzinfo=self._zone).hour
        return bucket_of_hour(self._buckets, hour) or ""

    def handle(self, message: Detections) -> list[Output]:
        camera_id, ref = message.ref.camera_id, message.ref
        monitor = self._monitor(camera_id)
        learning = monitor.reference is None
        change = monitor.observe(ref.frame_id, message.quality, message.model.version,
                                 list(message.detections), (ref.width, ref.height),
                                 self._bucket(ref), self._calibrations_left > 0,
                                 degraded=message.degraded)  # fmt: skip
        if monitor.reference is not None:
            self._dirty.add(camera_id)
            if learning:
                self._calibrations_left -= 1
                log.info("camera %s: reference %s learned", camera_id,
                         monitor.reference.reference_id)  # fmt: skip
            self._observed(camera_id, monitor)
        elif change is not None or ref.frame_id % WARMUP_SAVE_EVERY == 0:
            self._dirty.add(camera_id)  # still learning: now and then
        if change is None:
            return []
        return [Output(self._topic, camera_id, self._event(ref, message.model, change))]

    def _observed(self, camera_id: str, monitor: CameraMonitor) -> None:
        """Gauges and, every few frames, a point of history."""
        assert monitor.reference is not None
        for name, statistic, threshold in zip(
            NAMES, monitor.statistic, monitor.reference.threshold, strict=True
        ):
            statistic_gauge.labels(camera_id, name).set(statistic)
            threshold_gauge.labels(camera_id, name).set(threshold)
        active_gauge.labels(camera_id).set(monitor.episode_start is not None)
        point = monitor.last_point
        if (
            point is not None
            and point.frame_id == monitor.last_frame_id
            and point.frame_id % self._settings.history_every == 0
        ):
            self._history.append((camera_id, point))

    def _event(self, ref: FrameRef, model: ModelRef, change: Change) -> DriftEvent:
        camera_id = ref.camera_id
        signals = [e.name for e in change.evidence]
        if change.started:
            episodes_total.labels(camera_id).inc()
            log.warning("camera %s: drift on %s", camera_id, ", ".join(signals))
        else:
            note = f" ({change.note})" if change.note else ""
            log.info("camera %s: drift episode from frame %s ended%s", camera_id,
                     change.episode_start_frame_id, note)  # fmt: skip
        span = trace.get_current_span()
        span.set_attribute("steadyeye.drift.state", "started" if change.started else "ended")
        span.set_attribute("steadyeye.drift.signals", signals)
        return DriftEvent(
            event_id=change.event_id,
            state=STARTED if change.started else ENDED,
            ref=ref,
            signals=[SignalDrift(**dataclasses.asdict(e)) for e in change.evidence],
            also_moving=change.also_moving,
            reference_id=change.reference_id,
            model=model,
            episode_start_frame_id=change.episode_start_frame_id,
            note=change.note,
        )

    # --- operators' commands ------------------------------------------------------------------

    def tick(self) -> list[Output]:
        """Apply the commands for cameras this replica owns (has seen since its partitions were
        assigned); the others wait for their owner."""
        try:
            commands = control.pending_commands(self._redis)
        except redis.RedisError as exc:
            raise TransientError(f"redis unavailable reading monitor commands: {exc}") from exc
        outputs = []
        for camera_id, command in commands.items():
            if camera_id in self._monitors:
                outputs.extend(self._apply(camera_id, command))
        if not outputs and self._applied:
            self.before_commit()  # nothing to publish first: persist now
        return outputs

    def _apply(self, camera_id: str, command: dict) -> list[Output]:
        monitor = self._monitors[camera_id]
        action = command.get("command")
        if action == "pin":
            reference = Reference.from_state(command["reference"])
            change = monitor.pin(reference, str(command.get("bucket", "")))
        elif action == "accept":
            change = monitor.relearn()
        else:
            log.warning("camera %s: ignoring unknown monitor command %r", camera_id, action)
            change = None
        log.info("camera %s: %s applied", camera_id, action)
        self._dirty.add(camera_id)
        self._applied.append(camera_id)
        if change is None:
            return []
        ref = FrameRef(camera_id=camera_id, frame_id=max(monitor.last_frame_id, 0))
        model = ModelRef(version=monitor.model_version)
        return [Output(self._topic, camera_id, self._event(ref, model, change))]

    def before_commit(self) -> None:
        self._store.save_many({c: self._monitors[c].to_state() for c in self._dirty})
        self._dirty.clear()
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for camera_id, point in self._history:
                    # The frame id is the entry id: a replayed frame's point is refused.
                    fields = control.encode_point(point.z, point.ratio)
                    pipe.xadd(control.history_key(camera_id), fields, id=f"{point.frame_id}-1",
                              maxlen=self._settings.history_points, approximate=True)  # fmt: skip
                if self._applied:
                    pipe.hdel(control.COMMANDS_KEY, *self._applied)
                pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            raise TransientError(f"redis unavailable saving monitor history: {exc}") from exc
        self._history.clear()
        self._applied.clear()
        self._calibrations_left = CALIBRATIONS_PER_BATCH

    def reload_state(self) -> None:
        # Cameras may have moved, or a batch was rewound: go back to the committed snapshots.
        # A camera now owned elsewhere must not keep exporting its last figures from here.
        for camera_id in self._monitors:
            active_gauge.remove(camera_id)
            for name in NAMES:
                statistic_gauge.remove(camera_id, name)
                threshold_gauge.remove(camera_id, name)
        self._monitors.clear()
        self._dirty.clear()
        self._history.clear()
        self._applied.clear()
        self._calibrations_left = CALIBRATIONS_PER_BATCH
