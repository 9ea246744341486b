"""The firing frame's snapshot is kept as a JPEG in Redis, from whichever store holds the
frame's pixels."""

from __future__ import annotations

import uuid

import cv2
import numpy as np
import pytest
import redis

from services.alert.handler import AlertHandler
from services.alert.rules import AlertEngine, parse_rules
from services.core.claimcheck import PayloadStore, open_store
from services.core.payload_keys import frame_key
from services.core.settings import ClaimCheckSettings
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.detections_pb2 import Detection
from steadyeye.v1.tracks_pb2 import Track, Tracks, TrackState


@pytest.fixture
def client(local_redis: redis.Redis) -> redis.Redis:
    return local_redis


def forbidden_truck_handler(client, camera_id: str, payloads: PayloadStore) -> AlertHandler:
    rules = parse_rules(
        f"cameras:\n  {camera_id}:\n    rules:\n"
        "      - {id: no-trucks, type: forbidden_class, classes: [truck], for_s: 0}\n"
    )
    return AlertHandler(AlertEngine(rules), client, payloads, "alerts")


def truck_frames(camera_id: str, count: int = 3) -> list[Tracks]:
    frames = []
    for frame_id in range(count):
        ref = FrameRef(camera_id=camera_id, frame_id=frame_id, width=64, height=48)
        ref.capture_time.FromSeconds(1_800_000_000 + frame_id)
        truck = Detection(class_name="truck", score=0.9)
        truck.box.x2, truck.box.y2 = 100, 50
        frames.append(
            Tracks(
                ref=ref,
                tracks=[Track(track_id=1, state=TrackState.TRACK_STATE_UPDATED, detection=truck)],
            )
        )
    return frames


@pytest.mark.parametrize("store", ["redis", "shm"])
def test_the_firing_frame_is_kept_as_a_jpeg_snapshot(client, tmp_path, store):
    camera_id = f"snap-{uuid.uuid4().hex[:8]}"
    settings = ClaimCheckSettings(store=store, shm_dir=tmp_path, threshold_bytes=0)
    payloads = open_store(settings, lambda: client)
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, 32:] = (0, 0, 255)  # right half red, as ingest parks a raw BGR frame
    payloads.put(frame_key(camera_id, 0), frame.data)
    handler = forbidden_truck_handler(client, camera_id, payloads)

    [output] = handler.handle(truck_frames(camera_id, 1)[0])

    key = output.message.snapshot_key
    assert key.endswith(".jpg") and client.ttl(key) > 0
    snapshot = cv2.imdecode(np.frombuffer(client.get(key), np.uint8), cv2.IMREAD_COLOR)
    assert snapshot.shape == frame.shape
    assert np.abs(snapshot.astype(int) - frame).mean() < 8  # the same picture, JPEG-compressed
