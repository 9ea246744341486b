"""The tracking service keeps track ids through a kill -9 and restart mid-stream."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from services.core.messages import schema_headers
from services.tracking.tracker import ByteTracker, TrackerConfig
from steadyeye.v1.tracks_pb2 import Tracks, TrackState
from tests.scenes import detections

pytestmark = pytest.mark.stack
FRAMES = 60


def reference_ids(camera_id: str) -> dict[int, list[int]]:
    """Track ids per frame from an uninterrupted tracker on the same detections."""
    tracker, ids = ByteTracker(TrackerConfig()), {}
    for frame_id in range(FRAMES):
        message = detections(camera_id, frame_id)
        boxes = np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in message.detections])
        update = tracker.update(
            boxes,
            [d.score for d in message.detections],
            [d.class_id for d in message.detections],
            frame_id,
        )
        ids[frame_id] = [int(i) for i in update.track_ids if i > 0]
    return ids


def send(pipeline, camera_id: str, frame_id: int) -> None:
    message = detections(camera_id, frame_id)
    pipeline.send_raw(
        message.SerializeToString(),
        schema_headers(message),
        camera_id,
        topic=pipeline.topics.detections,
    )


def test_track_ids_survive_a_kill_and_restart_of_the_tracker(stack, pipeline, camera_id):
    tracking = stack.processes["tracking"]
    for frame_id in range(FRAMES // 2):
        send(pipeline, camera_id, frame_id)
        time.sleep(0.02)
    # Wait until the first half is tracked (and so snapshotted), then kill -9 mid-stream.
    assert len(pipeline.read_messages(pipeline.topics.tracks, Tracks, camera_id, FRAMES // 2))
    tracking.signal(signal.SIGKILL)
    for frame_id in range(FRAMES // 2, FRAMES):
        send(pipeline, camera_id, frame_id)

    received = pipeline.read_messages(pipeline.topics.tracks, Tracks, camera_id, FRAMES, 120)

    by_frame: dict[int, list[int]] = {}
    for message in received:  # at-least-once: a redelivered frame must carry the same ids
        ids = [t.track_id for t in message.tracks if t.state != TrackState.TRACK_STATE_ENDED]
        assert by_frame.setdefault(message.ref.frame_id, ids) == ids
    assert sorted(by_frame) == list(range(FRAMES))
    expected = reference_ids(camera_id)
    id_switches = sum(by_frame[f] != expected[f] for f in range(FRAMES))
    assert id_switches == 0
    assert len({i for ids in by_frame.values() for i in ids}) == 3
    assert tracking.restarts >= 1 and tracking.running()
