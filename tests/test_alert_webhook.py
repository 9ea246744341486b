"""The alert handler's sinks: the webhook retries until delivered and what still fails is
dead-lettered with a reason; the firing frame's snapshot is kept as a JPEG in Redis, from
whichever store holds the frame's pixels."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from typing import ClassVar

import cv2
import numpy as np
import pytest
import redis

from services.alert.handler import AlertHandler
from services.alert.rules import AlertEngine, parse_rules
from services.alert.webhook import Webhook
from services.core.claimcheck import PayloadStore, RedisStore, frame_key, open_store
from services.core.settings import ClaimCheckSettings, RedisSettings
from steadyeye.v1.alerts_pb2 import Alert
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.detections_pb2 import Detection
from steadyeye.v1.tracks_pb2 import Track, Tracks, TrackState


class Receiver(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first `failures` POSTs, then 200; keeps what it was sent."""

    failures = 0
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        cls.failures -= 1
        self.send_response(503 if cls.failures >= 0 else 200)
        self.end_headers()
        if cls.failures < 0:
            cls.received.append(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint():
    handler = type("Handler", (Receiver,), {"failures": 0, "received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/alerts"
    server.shutdown()


@pytest.fixture
def client() -> redis.Redis:
    connection = redis.Redis.from_url(RedisSettings().url)
    try:
        connection.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {RedisSettings().url}: {exc}")
    return connection


def forbidden_truck_handler(
    client, camera_id: str, webhook: Webhook | None, payloads: PayloadStore | None = None
) -> AlertHandler:
    rules = parse_rules(
        f"cameras:\n  {camera_id}:\n    rules:\n"
        "      - {id: no-trucks, type: forbidden_class, classes: [truck], for_s: 0}\n"
    )
    payloads = payloads or RedisStore(client, ClaimCheckSettings())
    return AlertHandler(AlertEngine(rules), client, payloads, "alerts", "deadletter", webhook)


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


def test_a_failing_webhook_is_retried_until_it_takes_the_alert(endpoint, client):
    receiver, url = endpoint
    receiver.failures = 2
    camera_id = f"hook-{uuid.uuid4().hex[:8]}"
    handler = forbidden_truck_handler(client, camera_id, Webhook(url, 2, 3, backoff_s=0.01))

    outputs = [out for frame in truck_frames(camera_id) for out in handler.handle(frame)]

    assert [o.topic for o in outputs] == ["alerts"]
    assert [body["rule_id"] for body in receiver.received] == ["no-trucks"]
    assert receiver.received[0]["alert_id"] == outputs[0].message.alert_id


def test_an_unreachable_webhook_dead_letters_the_alert_with_the_reason(client):
    camera_id = f"hook-{uuid.uuid4().hex[:8]}"
    webhook = Webhook("http://127.0.0.1:9/alerts", 1, 1, backoff_s=0.01)
    handler = forbidden_truck_handler(client, camera_id, webhook)

    outputs = [out for frame in truck_frames(camera_id) for out in handler.handle(frame)]

    assert [o.topic for o in outputs] == ["alerts", "deadletter"]
    alert, dead = outputs
    assert isinstance(dead.message, Alert) and dead.message.alert_id == alert.message.alert_id
    reason = dict(dead.headers)["x-deadletter-reason"].decode()
    assert "failed after 2 attempts" in reason


@pytest.mark.parametrize("store", ["redis", "shm"])
def test_the_firing_frame_is_kept_as_a_jpeg_snapshot(client, tmp_path, store):
    camera_id = f"snap-{uuid.uuid4().hex[:8]}"
    settings = ClaimCheckSettings(store=store, shm_dir=tmp_path, threshold_bytes=0)
    payloads = open_store(settings, lambda: client)
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, 32:] = (0, 0, 255)  # right half red, as ingest parks a raw BGR frame
    payloads.put(frame_key(camera_id, 0), frame.data)
    handler = forbidden_truck_handler(client, camera_id, None, payloads)

    [output] = handler.handle(truck_frames(camera_id, 1)[0])

    key = output.message.snapshot_key
    assert key.endswith(".jpg") and client.ttl(key) > 0
    snapshot = cv2.imdecode(np.frombuffer(client.get(key), np.uint8), cv2.IMREAD_COLOR)
    assert snapshot.shape == frame.shape
    assert np.abs(snapshot.astype(int) - frame).mean() < 8  # the same picture, JPEG-compressed
