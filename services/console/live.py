"""What the console shows, built from the topics' records: each camera's latest tracked frames
and health, the model state around it, and the recent alerts. Pure state, no I/O; the feed
(feed.py) fills it from one thread, the web app reads it from others, under one lock."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from steadyeye.annotate import Box, boxes_of
from steadyeye.v1.alerts_pb2 import Alert, AlertState, Severity
from steadyeye.v1.detections_pb2 import DegradedReason, Detections
from steadyeye.v1.drift_pb2 import DriftEvent, DriftState
from steadyeye.v1.rollouts_pb2 import RolloutEvent, RolloutMode, RolloutStep
from steadyeye.v1.tracks_pb2 import Tracks

RATE_WINDOW_S = 10.0  # fps: frames tracked in the last 10 s
LATENCY_SAMPLES = 100
RECENT_FRAMES = 8  # a tile falls back to these when the newest frame's pixels are gone
SILENT_AFTER_S = 10.0


@dataclass(frozen=True)
class TrackedFrame:
    frame_id: int
    width: int
    height: int
    boxes: tuple[Box, ...]
    trace_id: str


@dataclass
class CameraView:
    camera_id: str
    frames: deque[TrackedFrame] = field(default_factory=lambda: deque(maxlen=RECENT_FRAMES))
    arrivals: deque[float] = field(default_factory=deque)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    last_seen: float = 0.0  # when its latest frame arrived here
    last_capture: float = 0.0
    model: str = ""
    version: str = ""
    degraded_reason: str = ""  # empty: the primary tier answered
    tier: str = ""
    drift: str = ""  # empty: no open drift episode

    def health(self, now: float) -> dict:
        while self.arrivals and self.arrivals[0] < now - RATE_WINDOW_S:
            self.arrivals.popleft()
        span = min(RATE_WINDOW_S, now - self.arrivals[0]) if self.arrivals else 0.0
        p50, p95 = np.percentile(self.latencies_ms, [50, 95]) if self.latencies_ms else (None,) * 2
        silent = bool(self.last_seen) and now - self.last_seen > SILENT_AFTER_S
        latest = self.frames[-1] if self.frames else None
        return {
            "camera_id": self.camera_id,
            "frame_id": latest.frame_id if latest else None,
            "tracks": len(latest.boxes) if latest else 0,
            "fps": round((len(self.arrivals) - 1) / span, 1) if span > 0 else 0.0,
            "latency_ms": {
                "p50": None if p50 is None else round(float(p50)),
                "p95": None if p95 is None else round(float(p95)),
            },
            "silent_s": round(now - self.last_seen, 1) if self.last_seen else None,
            "status": "silent" if silent else "live",
            "model": self.model,
            "version": self.version,
            "degraded": self.degraded_reason,
            "tier": self.tier,
            "drift": self.drift,
            "trace_id": latest.trace_id if latest else "",
        }


@dataclass(frozen=True)
class AlertView:
    alert_id: str
    rule_id: str
    camera_id: str
    frame_id: int
    severity: str
    state: str
    message: str
    first_seen: float
    snapshot_key: str
    trace_id: str


class LiveView:
    def __init__(self, alerts_kept: int = 100) -> None:
        self._lock = threading.Lock()
        self._cameras: dict[str, CameraView] = {}
        self._alerts: dict[str, AlertView] = {}  # by alert id, oldest first
        self._alerts_kept = alerts_kept
        self._rollout: dict[str, RolloutEvent] = {}  # latest step per model

    def _camera(self, camera_id: str) -> CameraView:
        view = self._cameras.get(camera_id)
        if view is None:
            view = self._cameras[camera_id] = CameraView(camera_id)
        return view

    def add_tracks(self, message: Tracks, trace_id: str, received_at: float) -> None:
        ref = message.ref
        frame = TrackedFrame(
            ref.frame_id, ref.width, ref.height, tuple(boxes_of(message)), trace_id
        )
        with self._lock:
            view = self._camera(ref.camera_id)
            capture = ref.capture_time.ToNanoseconds() / 1e9
            if capture <= view.last_capture:
                # A redelivery (at-least-once): the tile only moves forward. Not by frame id: a
                # camera restarted from its first frame has lower ids but later capture times.
                return
            view.last_capture = capture
            view.frames.append(frame)
            view.arrivals.append(received_at)
            view.last_seen = received_at
            view.latencies_ms.append(max(0.0, (received_at - capture) * 1000))

    def add_detections(self, message: Detections) -> None:
        with self._lock:
            view = self._camera(message.ref.camera_id)
            view.model, view.version = message.model.name, message.model.version
            view.tier = message.tier
            view.degraded_reason = (
                DegradedReason.Name(message.degraded_reason)
                .removeprefix("DEGRADED_REASON_")
                .lower()
                if message.degraded
                else ""
            )

    def add_drift(self, event: DriftEvent) -> None:
        with self._lock:
            view = self._camera(event.ref.camera_id)
            if event.state == DriftState.DRIFT_STATE_STARTED:
                names = ", ".join(s.name for s in event.signals) or "signals"
                view.drift = f"drifting since frame {event.ref.frame_id} ({names})"
            elif event.state == DriftState.DRIFT_STATE_ENDED:
                view.drift = ""

    def add_rollout(self, event: RolloutEvent) -> None:
        with self._lock:
            self._rollout[event.model] = event

    def add_alert(self, alert: Alert, trace_id: str) -> None:
        view = AlertView(
            alert_id=alert.alert_id,
            rule_id=alert.rule_id,
            camera_id=alert.ref.camera_id,
            frame_id=alert.ref.frame_id,
            severity=Severity.Name(alert.severity).removeprefix("SEVERITY_").lower(),
            state=(
                AlertState.Name(alert.state).removeprefix("ALERT_STATE_").lower()
                if alert.state != AlertState.ALERT_STATE_UNSPECIFIED
                else ""  # an alert without a resolution (a crossing, a forbidden class)
            ),
            message=alert.message,
            first_seen=alert.first_seen.ToNanoseconds() / 1e9,
            snapshot_key=alert.snapshot_key,
            trace_id=trace_id,
        )
        with self._lock:
            self._alerts.pop(alert.alert_id, None)  # a redelivery moves to the front, once
            self._alerts[alert.alert_id] = view
            while len(self._alerts) > self._alerts_kept:
                self._alerts.pop(next(iter(self._alerts)))

    # What the pages read: copies, so a page renders without holding the lock.

    def health(self, camera_id: str | None = None, now: float | None = None) -> list[dict]:
        now = time.time() if now is None else now
        with self._lock:
            views = [self._cameras[c] for c in sorted(self._cameras) if camera_id in (None, c)]
            return [view.health(now) for view in views]

    def recent_frames(self, camera_id: str) -> list[TrackedFrame]:
        """Newest first."""
        with self._lock:
            view = self._cameras.get(camera_id)
            return list(reversed(view.frames)) if view else []

    def alerts(self, camera_id: str | None = None) -> list[AlertView]:
        """Newest first."""
        with self._lock:
            found = list(reversed(self._alerts.values()))
        return [a for a in found if camera_id in (None, a.camera_id)]

    def alert(self, alert_id: str) -> AlertView | None:
        with self._lock:
            return self._alerts.get(alert_id)

    def rollouts(self) -> list[dict]:
        with self._lock:
            events = list(self._rollout.values())
        return [
            {
                "model": e.model,
                "serving": e.serving_version,
                "candidate": e.candidate_version,
                "mode": RolloutMode.Name(e.mode).removeprefix("ROLLOUT_MODE_").lower(),
                "percent": e.percent,
                "step": RolloutStep.Name(e.step).removeprefix("ROLLOUT_STEP_").lower(),
                "reason": e.reason,
            }
            for e in events
        ]
