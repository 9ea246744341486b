"""The tracking service keeps track ids through a kill -9 and restart mid-stream, and publishes a
missed track as coasting."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from services.core.messages import schema_headers
from services.tracking.tracker import ByteTracker, TrackerConfig
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.tracks_pb2 import Tracks, TrackState
from tests.scenes import detections

pytestmark = pytest.mark.stack
FRAMES = 60
# Frames where the detector misses the first walker, before and after the kill: its track
# coasts through them.
MISSED = {12, 13, 40, 41}


def detected(camera_id: str, frame_id: int) -> Detections:
    message = detections(camera_id, frame_id)
    if frame_id in MISSED:
        del message.detections[0]
    return message


def reference(camera_id: str) -> tuple[dict[int, list[int]], dict[int, np.ndarray]]:
    """Track ids and track boxes per frame (coasting tracks included) from an uninterrupted
    tracker on the same detections."""
    tracker, ids, boxes_of = ByteTracker(TrackerConfig()), {}, {}
    for frame_id in range(FRAMES):
        message = detected(camera_id, frame_id)
        boxes = np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in message.detections])
        update = tracker.update(
            boxes,
            [d.score for d in message.detections],
            [d.class_id for d in message.detections],
            frame_id,
        )
        # As published: the matched tracks, then the coasting ones.
        ids[frame_id] = [int(i) for i in update.track_ids if i > 0]
        ids[frame_id] += update.coasting_ids.tolist()
        boxes_of[frame_id] = np.vstack([update.boxes[update.track_ids > 0], update.coasting_boxes])
    return ids, boxes_of


def send(pipeline, camera_id: str, frame_id: int) -> None:
    message = detected(camera_id, frame_id)
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
    boxes_by_frame: dict[int, np.ndarray] = {}
    for message in received:  # at-least-once: a redelivered frame must carry the same ids
        live = [t for t in message.tracks if t.state != TrackState.TRACK_STATE_ENDED]
        coasted = [t for t in live if t.state == TrackState.TRACK_STATE_COASTED]
        assert len(coasted) == (message.ref.frame_id in MISSED)
        assert not any(t.HasField("detection") for t in coasted)
        ids = [t.track_id for t in live]
        assert by_frame.setdefault(message.ref.frame_id, ids) == ids
        boxes_by_frame[message.ref.frame_id] = np.array(
            [[t.box.x1, t.box.y1, t.box.x2, t.box.y2] for t in live]
        ).reshape(-1, 4)
    assert sorted(by_frame) == list(range(FRAMES))
    expected, expected_boxes = reference(camera_id)
    for f in range(FRAMES):  # the smoothed boxes too continue as if never interrupted
        np.testing.assert_allclose(boxes_by_frame[f], expected_boxes[f], rtol=1e-5, atol=1e-2)
    id_switches = sum(by_frame[f] != expected[f] for f in range(FRAMES))
    assert id_switches == 0
    assert len({i for ids in by_frame.values() for i in ids}) == 3
    assert tracking.restarts >= 1 and tracking.running()
