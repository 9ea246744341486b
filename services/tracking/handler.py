"""Detections -> Tracks: one tracker per camera, its state snapshotted to Redis at each commit
so a restarted or rebalanced replica continues with the same track ids."""

from __future__ import annotations

import logging

import numpy as np
from opentelemetry import trace
from prometheus_client import Counter

from services.core.errors import PoisonMessage
from services.core.handler import Handler
from services.core.messages import MAX_FRAME_ID, Output
from services.core.statestore import StateStore
from services.tracking.tracker import ByteTracker, TrackerConfig
from steadyeye.v1.common_pb2 import BoundingBox
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.tracks_pb2 import Track, Tracks, TrackState

log = logging.getLogger(__name__)
track_events = Counter("steadyeye_tracks_total", "Track lifecycle events", ["camera", "event"])


class TrackingHandler(Handler):
    input_type = Detections

    def __init__(self, store: StateStore, output_topic: str, config: TrackerConfig) -> None:
        self._store = store
        self._topic = output_topic
        self._config = config
        self._trackers: dict[str, ByteTracker] = {}
        self._dirty: set[str] = set()

    def _tracker(self, camera_id: str) -> ByteTracker:
        tracker = self._trackers.get(camera_id)
        if tracker is None:
            tracker = ByteTracker(self._config)
            state = self._store.load(camera_id)
            if state:
                try:
                    tracker = ByteTracker.from_state(state, self._config)
                except (ValueError, KeyError, TypeError) as exc:
                    # An unreadable snapshot (older format) must not poison every later frame.
                    log.warning("camera %s: discarding tracker snapshot: %s", camera_id, exc)
            self._trackers[camera_id] = tracker
        return tracker

    def handle(self, message: Detections) -> list[Output]:
        camera_id = message.ref.camera_id
        if message.ref.frame_id > MAX_FRAME_ID:  # the tracker keeps frame ids as int64
            raise PoisonMessage(f"frame id {message.ref.frame_id} is beyond {MAX_FRAME_ID}")
        detections = message.detections
        update = self._tracker(camera_id).update(
            np.array(
                [[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in detections], np.float32
            ).reshape(-1, 4),
            np.array([d.score for d in detections], np.float32),
            np.array([d.class_id for d in detections], np.int64),
            message.ref.frame_id,
        )
        if update.stale:
            return []  # a redelivered or late frame: its tracks were already published
        self._dirty.add(camera_id)
        started = set(update.started)
        tracks = [
            Track(
                track_id=int(track_id),
                state=TrackState.TRACK_STATE_STARTED
                if track_id in started
                else TrackState.TRACK_STATE_UPDATED,
                detection=detection,
                box=BoundingBox(x1=x1, y1=y1, x2=x2, y2=y2),
            )
            for detection, track_id, (x1, y1, x2, y2) in zip(
                detections, update.track_ids.tolist(), update.boxes.tolist(), strict=True
            )
            if track_id > 0
        ]
        tracks += [
            Track(
                track_id=int(track_id),
                state=TrackState.TRACK_STATE_COASTED,
                box=BoundingBox(x1=x1, y1=y1, x2=x2, y2=y2),
            )
            for track_id, (x1, y1, x2, y2) in zip(
                update.coasting_ids.tolist(), update.coasting_boxes.tolist(), strict=True
            )
        ]
        tracks += [Track(track_id=t, state=TrackState.TRACK_STATE_ENDED) for t in update.ended]
        track_events.labels(camera_id, "started").inc(len(started))
        track_events.labels(camera_id, "ended").inc(len(update.ended))
        # Track-frames the detector missed: a rising rate is a detector losing what it saw.
        track_events.labels(camera_id, "coasted").inc(len(update.coasting_ids))
        trace.get_current_span().set_attribute("steadyeye.track_count", len(tracks))
        out = Tracks(ref=message.ref, tracks=tracks, quality=message.quality)
        return [Output(self._topic, camera_id, out)]

    def before_commit(self) -> None:
        self._store.save_many({c: self._trackers[c].to_state() for c in self._dirty})
        self._dirty.clear()

    def reload_state(self) -> None:
        # Cameras may have moved: reload every tracker from its last committed snapshot.
        self._trackers.clear()
        self._dirty.clear()
