"""Drift episodes as alerts: one FIRING alert per episode with a snapshot of the frame that
started it and the signals that moved, one RESOLVED alert when it ends, nothing again on a
replay, nothing for a rule whose signals did not move."""

from __future__ import annotations

import uuid

import cv2
import numpy as np
import pytest
import redis
from google.protobuf.timestamp_pb2 import Timestamp

from services.alert.handler import AlertHandler, to_drift
from services.alert.rules import AlertEngine, parse_rules
from services.core.claimcheck import open_store
from services.core.errors import PoisonMessage
from services.core.messages import schema_headers
from services.core.payload_keys import frame_key
from services.core.settings import ClaimCheckSettings
from steadyeye.v1.alerts_pb2 import Alert, AlertState, Severity
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.drift_pb2 import DriftEvent, DriftState, SignalDrift
from steadyeye.v1.tracks_pb2 import Tracks

STARTED, ENDED = DriftState.DRIFT_STATE_STARTED, DriftState.DRIFT_STATE_ENDED
FIRING, RESOLVED = AlertState.ALERT_STATE_FIRING, AlertState.ALERT_STATE_RESOLVED
DARK = SignalDrift(
    name="brightness", statistic=312.4, threshold=95.1, value=31.2, reference=118.5, scale=4.0
)
MOVED = SignalDrift(
    name="thumb_dist", statistic=140.0, threshold=88.0, value=0.41, reference=0.0, scale=0.02
)
DARK_TEXT = "brightness 31.2 vs reference 118.5 (statistic 312.4 > threshold 95.1)"
MOVED_TEXT = "thumb_dist 0.41 vs reference 0 (statistic 140 > threshold 88)"


def event(
    state: int, ref: FrameRef, event_id: str, *signals: SignalDrift, start: int = 0
) -> DriftEvent:
    return DriftEvent(
        event_id=event_id,
        state=state,
        ref=ref,
        signals=signals,
        also_moving=["contrast"] if state == STARTED else [],
        reference_id=f"{ref.camera_id}@59/1",
        episode_start_frame_id=start,
    )


def later(ref: FrameRef, frames: int) -> FrameRef:
    """The camera's frame `frames` later at 10 fps (its pixels stored nowhere)."""
    moved = FrameRef(camera_id=ref.camera_id, frame_id=ref.frame_id + frames)
    moved.capture_time.FromNanoseconds(ref.capture_time.ToNanoseconds() + frames * 100_000_000)
    return moved


# --- the handler, on a Redis of its own ---------------------------------------------------


@pytest.fixture
def client(local_redis: redis.Redis) -> redis.Redis:
    return local_redis


def drift_handler(client: redis.Redis, camera_id: str, tmp_path) -> AlertHandler:
    rules = parse_rules(
        f"cameras:\n  {camera_id}:\n    rules:\n"
        "      - {id: any, type: drift}\n"
        "      - {id: moved, type: drift, signals: [thumb_dist], severity: info}\n"
    )
    settings = ClaimCheckSettings(store="shm", shm_dir=tmp_path, threshold_bytes=0)
    return AlertHandler(AlertEngine(rules), client, open_store(settings, lambda: client), "alerts")


def test_one_alert_per_episode_and_rule_then_its_resolution(client, tmp_path):
    """In one batch and after a restart: a replayed event sends nothing again, and an episode's
    end resolves only the alerts that were sent (the `moved` rule's signal did not move)."""
    camera_id = f"drift-{uuid.uuid4().hex[:8]}"
    start = FrameRef(camera_id=camera_id, frame_id=40, width=64, height=48)
    start.capture_time.FromSeconds(1_800_000_000)
    image = np.full((48, 64, 3), 90, np.uint8)
    image[:, :32] = (255, 0, 0)  # left half blue
    store = ClaimCheckSettings(store="shm", shm_dir=tmp_path, threshold_bytes=0)
    open_store(store, lambda: client).put(frame_key(camera_id, 40), image.data)
    started = event(STARTED, start, f"{camera_id}@40", DARK)
    ended = event(ENDED, later(start, 55), f"{camera_id}@40", DARK, MOVED, start=40)
    handler = drift_handler(client, camera_id, tmp_path)

    [firing] = [out.message for out in handler.handle(started)]
    assert handler.handle(started) == []  # redelivered within the batch
    [resolution] = [out.message for out in handler.handle(ended)]
    handler.before_commit()

    assert (firing.rule_id, firing.state, firing.severity) == (
        "any",
        FIRING,
        Severity.SEVERITY_WARNING,
    )
    assert DARK_TEXT in firing.message and "also moving: contrast" in firing.message
    snapshot = cv2.imdecode(np.frombuffer(client.get(firing.snapshot_key), np.uint8), 1)
    assert np.abs(snapshot.astype(int) - image).mean() < 8
    assert (resolution.rule_id, resolution.state) == ("any", RESOLVED)
    assert resolution.resolves == firing.alert_id != resolution.alert_id
    assert resolution.first_seen == firing.first_seen == start.capture_time
    assert resolution.last_seen.seconds == start.capture_time.seconds + 5
    assert resolution.snapshot_key == ""  # the ending frame's pixels are not stored

    restarted = drift_handler(client, camera_id, tmp_path)
    assert restarted.handle(started) == [] and restarted.handle(ended) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"state": DriftState.DRIFT_STATE_UNSPECIFIED}, "neither started nor ended"),
        ({"event_id": ""}, "without event_id"),
    ],
)
def test_a_drift_event_alerts_cannot_be_named_for_is_poison(change, reason):
    message = event(STARTED, FrameRef(camera_id="cam", frame_id=1), "cam@1", DARK)
    for field, value in change.items():
        setattr(message, field, value)
    with pytest.raises(PoisonMessage, match=reason):
        to_drift(message)


# --- the running stack: tests/data/rules.yaml's drift-any and drift-some ------------------


def through_the_pipeline(pipeline, camera_id: str, bus_jpg: bytes) -> FrameRef:
    """A raw frame through ingest's claim-check path to tracking: the ref a monitor would
    name, with the frame's pixels in the store."""
    pipeline.send_frame(camera_id, 7, cv2.imdecode(np.frombuffer(bus_jpg, np.uint8), 1))
    [tracks] = pipeline.read_messages(pipeline.topics.tracks, Tracks, camera_id, 1, 90)
    assert tracks.ref.frame_id == 7 and tracks.ref.width and tracks.ref.height
    return tracks.ref


def same_time(a: Timestamp, b: Timestamp) -> bool:
    return abs(a.ToNanoseconds() - b.ToNanoseconds()) < 1_000  # through a float of seconds


def send(pipeline, message: DriftEvent) -> None:
    pipeline.send_raw(
        message.SerializeToString(),
        schema_headers(message),
        message.ref.camera_id,
        topic=pipeline.topics.drift,
    )


def alerts(pipeline, camera_id: str, count: int) -> list[Alert]:
    """The camera's alerts, in order (one partition), once `count` are there."""
    found = pipeline.read_messages(pipeline.topics.alerts, Alert, camera_id, count, 60)
    assert len(found) >= count, [a.message for a in found]
    return found


@pytest.mark.stack
def test_a_drift_episode_is_one_alert_with_its_snapshot_then_resolved(pipeline, bus_jpg):
    camera_id = "drift-any"
    ref = through_the_pipeline(pipeline, camera_id, bus_jpg)
    episode = f"{camera_id}@{ref.frame_id}"
    started = event(STARTED, ref, episode, DARK, MOVED, start=ref.frame_id)
    send(pipeline, started)

    [firing] = alerts(pipeline, camera_id, 1)
    assert (firing.rule_id, firing.state) == ("drift", FIRING)
    assert firing.severity == Severity.SEVERITY_CRITICAL
    assert firing.ref.frame_id == ref.frame_id and same_time(firing.first_seen, ref.capture_time)
    assert DARK_TEXT in firing.message and MOVED_TEXT in firing.message, firing.message
    snapshot = pipeline.redis.get(firing.snapshot_key)
    image = cv2.imdecode(np.frombuffer(snapshot, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (ref.height, ref.width, 3)

    # The episode's events again (a replayed topic), then its end, then a new episode: a
    # camera's alerts are in order, so a duplicate would show before the new episode's alert.
    send(pipeline, started)
    ended = event(ENDED, later(ref, 60), episode, DARK, MOVED, start=ref.frame_id)
    send(pipeline, ended)
    send(pipeline, ended)
    send(pipeline, event(STARTED, later(ref, 200), f"{episode}-2", DARK, start=ref.frame_id + 200))

    first, resolution, second = alerts(pipeline, camera_id, 3)[:3]
    assert first.alert_id == firing.alert_id
    assert (resolution.state, resolution.resolves) == (RESOLVED, firing.alert_id)
    assert resolution.first_seen == firing.first_seen
    assert same_time(resolution.last_seen, ended.ref.capture_time)
    assert "is over" in resolution.message
    assert (second.state, second.ref.frame_id) == (FIRING, ref.frame_id + 200)
    assert len({firing.alert_id, resolution.alert_id, second.alert_id}) == 3


@pytest.mark.stack
def test_a_rule_for_other_signals_sends_nothing_for_the_episode(pipeline, bus_jpg):
    camera_id = "drift-some"  # its rule: thumb_dist and edge_dist only
    ref = through_the_pipeline(pipeline, camera_id, bus_jpg)
    dark = f"{camera_id}@{ref.frame_id}"
    send(pipeline, event(STARTED, ref, dark, DARK, start=ref.frame_id))
    send(pipeline, event(ENDED, later(ref, 60), dark, DARK, MOVED, start=ref.frame_id))
    send(pipeline, event(STARTED, later(ref, 100), f"{dark}-moved", MOVED))

    # In order on the camera's partition: an alert of the dark episode would come first.
    [only] = alerts(pipeline, camera_id, 1)
    assert (only.rule_id, only.state, only.ref.frame_id) == ("moved", FIRING, ref.frame_id + 100)
    assert MOVED_TEXT in only.message and "brightness" not in only.message
