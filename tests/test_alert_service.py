"""Alerts through the running alert service: deduplicated on replay, deterministic."""

from __future__ import annotations

import pytest

from services.core.messages import schema_headers
from services.tracking.tracker import ByteTracker, TrackerConfig
from steadyeye.v1.alerts_pb2 import Alert
from steadyeye.v1.tracks_pb2 import Track, Tracks, TrackState
from tests.scenes import Walker, detections

pytestmark = pytest.mark.stack
FRAMES = 50
SCENE = (
    Walker("person", (100, 100), (6, 0)),  # crosses x=300 at frame ~34: one gate alert
    Walker("person", (480, 300), (0, 0)),  # stands in the yard: one yard alert
    Walker("truck", (150, 400), (0, 0), (120, 60)),  # a forbidden class: one alert
)


def tracks_sequence(camera_id: str) -> list[Tracks]:
    tracker, sequence = ByteTracker(TrackerConfig()), []
    for frame_id in range(FRAMES):
        message = detections(camera_id, frame_id, SCENE)
        update = tracker.update(
            [[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in message.detections],
            [d.score for d in message.detections],
            [d.class_id for d in message.detections],
            frame_id,
        )
        tracks = [
            Track(track_id=int(i), state=TrackState.TRACK_STATE_UPDATED, detection=d)
            for d, i in zip(message.detections, update.track_ids, strict=True)
            if i > 0
        ]
        sequence.append(Tracks(ref=message.ref, tracks=tracks))
    return sequence


def replay(pipeline, camera_id: str) -> None:
    for message in tracks_sequence(camera_id):
        pipeline.send_raw(
            message.SerializeToString(),
            schema_headers(message),
            camera_id,
            topic=pipeline.topics.tracks,
        )


def alerts_of(pipeline, camera_id: str, expected: int) -> list[Alert]:
    # Read past the expected count for a while, so a duplicate would be seen.
    return pipeline.read_messages(pipeline.topics.alerts, Alert, camera_id, expected + 1, 5)


def test_each_rule_fires_once_and_a_replay_sends_nothing_again(pipeline):
    replay(pipeline, "rules-a")
    replay(pipeline, "rules-a")  # the same frames again: redelivery, or a replayed topic

    alerts = alerts_of(pipeline, "rules-a", 3)

    assert sorted(a.rule_id for a in alerts) == ["gate", "no-trucks", "yard"]
    assert len({a.alert_id for a in alerts}) == 3
    assert all(a.first_seen.seconds and a.last_seen.seconds for a in alerts)


def test_the_same_input_on_two_cameras_gives_the_same_alerts(pipeline):
    replay(pipeline, "rules-b")
    replay(pipeline, "rules-c")

    def essence(camera_id: str) -> list[tuple]:
        alerts = alerts_of(pipeline, camera_id, 3)
        return sorted((a.rule_id, a.ref.frame_id, tuple(a.track_ids)) for a in alerts)

    first = essence("rules-b")
    assert len(first) == 3
    assert first == essence("rules-c")
