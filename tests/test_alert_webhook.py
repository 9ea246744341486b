"""The webhook sink: retries until delivered; what still fails is dead-lettered with a reason."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from typing import ClassVar

import pytest
import redis

from services.alert.handler import AlertHandler
from services.alert.rules import AlertEngine, parse_rules
from services.alert.webhook import Webhook
from services.core.settings import RedisSettings
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


def forbidden_truck_handler(client, camera_id: str, webhook: Webhook) -> AlertHandler:
    rules = parse_rules(
        f"cameras:\n  {camera_id}:\n    rules:\n"
        "      - {id: no-trucks, type: forbidden_class, classes: [truck], for_s: 0}\n"
    )
    return AlertHandler(AlertEngine(rules), client, "alerts", "deadletter", webhook)


def truck_frames(camera_id: str, count: int = 3) -> list[Tracks]:
    frames = []
    for frame_id in range(count):
        ref = FrameRef(camera_id=camera_id, frame_id=frame_id)
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
