"""Detections -> drift events: one CameraMonitor per camera, its state snapshotted to Redis at
each commit (like the tracker's) so a restarted or rebalanced monitor keeps its reference and
its running test, and a replay opens no second episode."""

from __future__ import annotations

import dataclasses
import logging

from opentelemetry import trace
from prometheus_client import Counter, Gauge

from services.core.handler import Handler
from services.core.messages import Output
from services.core.statestore import StateStore
from services.monitor.camera import CameraMonitor, Change
from services.monitor.settings import MonitorSettings
from services.monitor.signals import NAMES
from steadyeye.v1.detections_pb2 import Detections
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
# Snapshot a warm-up in progress (~160 KB) every so many frames, not at every commit: a crash
# costs the reference at most these frames, which the warm-up then simply takes again.
WARMUP_SAVE_EVERY = 50
STARTED, ENDED = DriftState.DRIFT_STATE_STARTED, DriftState.DRIFT_STATE_ENDED


class MonitorHandler(Handler):
    input_type = Detections

    def __init__(self, store: StateStore, output_topic: str, settings: MonitorSettings) -> None:
        self._store = store
        self._topic = output_topic
        self._settings = settings
        self._monitors: dict[str, CameraMonitor] = {}
        self._dirty: set[str] = set()

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

    def handle(self, message: Detections) -> list[Output]:
        camera_id = message.ref.camera_id
        monitor = self._monitor(camera_id)
        learning = monitor.reference is None
        change = monitor.observe(message.ref.frame_id, message.quality, message.model.version)
        if monitor.reference is None:  # still learning (or a replayed frame)
            if len(monitor.warmup) % WARMUP_SAVE_EVERY == 0:
                self._dirty.add(camera_id)
            return []
        self._dirty.add(camera_id)
        if learning:
            log.info("camera %s: reference %s learned", camera_id, monitor.reference.reference_id)
        for name, statistic, threshold in zip(
            NAMES, monitor.statistic, monitor.reference.threshold, strict=True
        ):
            statistic_gauge.labels(camera_id, name).set(statistic)
            threshold_gauge.labels(camera_id, name).set(threshold)
        active_gauge.labels(camera_id).set(monitor.episode_start is not None)
        if change is None:
            return []
        return [Output(self._topic, camera_id, self._event(message, monitor, change))]

    def _event(self, message: Detections, monitor: CameraMonitor, change: Change) -> DriftEvent:
        assert monitor.reference is not None
        camera_id = message.ref.camera_id
        signals = [e.name for e in change.evidence]
        if change.started:
            episodes_total.labels(camera_id).inc()
            log.warning("camera %s: drift on %s", camera_id, ", ".join(signals))
        else:
            log.info("camera %s: drift episode from frame %s ended", camera_id,
                     change.episode_start_frame_id)  # fmt: skip
        span = trace.get_current_span()
        span.set_attribute("steadyeye.drift.state", "started" if change.started else "ended")
        span.set_attribute("steadyeye.drift.signals", signals)
        return DriftEvent(
            event_id=change.event_id,
            state=STARTED if change.started else ENDED,
            ref=message.ref,
            signals=[SignalDrift(**dataclasses.asdict(e)) for e in change.evidence],
            also_moving=change.also_moving,
            reference_id=monitor.reference.reference_id,
            model=message.model,
            episode_start_frame_id=change.episode_start_frame_id,
        )

    def before_commit(self) -> None:
        self._store.save_many({c: self._monitors[c].to_state() for c in self._dirty})
        self._dirty.clear()

    def reload_state(self) -> None:
        # Cameras may have moved, or a batch was rewound: go back to the committed snapshots.
        self._monitors.clear()
        self._dirty.clear()
