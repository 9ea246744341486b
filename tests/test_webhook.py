"""Webhook delivery: each alert reaches the endpoint once, in order per camera, with its
alert_id as the idempotency key; a dead endpoint delays nothing on steadyeye.alerts.v1 and
loses nothing; what the endpoint refuses, or what fails for too long, is dead-lettered."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from services.core.errors import PoisonMessage, TransientError
from services.webhook.handler import WebhookHandler
from steadyeye.v1.alerts_pb2 import Alert
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.webhook_sink import Delivery, WebhookSink
from tests.conftest import readyz, wait_for
from tests.test_alert_service import replay

ALERT_ID = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def endpoint() -> Iterator[WebhookSink]:
    receiver = WebhookSink()
    yield receiver
    receiver.down()


def alert(alert_id: str = ALERT_ID, camera_id: str = "hook-cam") -> Alert:
    return Alert(alert_id=alert_id, rule_id="gate", ref=FrameRef(camera_id=camera_id, frame_id=3))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- The handler against a real HTTP endpoint ------------------------------------------------


def test_an_alert_is_posted_as_json_with_its_id_as_the_idempotency_key(endpoint):
    endpoint.up()
    assert WebhookHandler(endpoint.url, 2, 600).handle(alert()) == []
    [delivery] = endpoint.received
    assert delivery.headers["Idempotency-Key"] == ALERT_ID
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.body["rule_id"] == "gate" and delivery.body["ref"]["frame_id"] == "3"


@pytest.mark.parametrize(
    ("statuses", "outcomes"),
    [
        pytest.param([503, 503], [TransientError, TransientError, None], id="5xx retried"),
        pytest.param([429, 408], [TransientError, TransientError, None], id="slow down retried"),
        pytest.param([400], [PoisonMessage], id="4xx refused at once"),
        pytest.param([404], [PoisonMessage], id="wrong path refused at once"),
    ],
)
def test_what_the_endpoint_answers_decides_retry_or_dead_letter(endpoint, statuses, outcomes):
    endpoint.up().statuses = list(statuses)
    handler = WebhookHandler(endpoint.url, 2, 600)
    for outcome in outcomes:
        if outcome is None:
            assert handler.handle(alert()) == []
        else:
            with pytest.raises(outcome):
                handler.handle(alert())
    assert len(endpoint.received) == (1 if outcomes[-1] is None else 0)


def test_a_refused_alert_says_why_without_the_token_in_the_url(endpoint):
    endpoint.up().statuses = [400]
    with pytest.raises(PoisonMessage) as refused:
        WebhookHandler(endpoint.url, 2, 600).handle(alert())
    reason = str(refused.value)
    assert f"webhook http://127.0.0.1:{endpoint.port} refused it (1 attempts): HTTP 400" in reason
    assert "s3cr3t" not in reason


def test_an_endpoint_down_longer_than_retry_for_s_dead_letters_the_alert(endpoint):
    clock = Clock()
    handler = WebhookHandler(endpoint.url, 1, retry_for_s=60, clock=clock)  # nothing listens
    with pytest.raises(TransientError, match="will retry alert"):
        handler.handle(alert())
    clock.now += 59
    with pytest.raises(TransientError):
        handler.handle(alert())
    clock.now += 1
    with pytest.raises(PoisonMessage, match=r"failed for 60s \(3 attempts\): .*refused"):
        handler.handle(alert())


@pytest.mark.parametrize(
    "hostile", ["", "abc", ALERT_ID + "\r\nX-Injected: 1", ALERT_ID.upper(), ALERT_ID + "0"]
)
def test_an_alert_id_that_is_not_a_sha1_is_refused_before_any_request(endpoint, hostile):
    endpoint.up()
    with pytest.raises(PoisonMessage, match="is not 40 hex digits"):
        WebhookHandler(endpoint.url, 2, 600).handle(alert(hostile))
    assert endpoint.received == []


# --- The service in the running stack ---------------------------------------------------------

CAMERAS = ("webhook-1", "webhook-2")  # tests/data/rules.yaml: 3 alerts each for the replay
OUTAGE_S = 6.0  # several retries with backoff; `steadyeye bench webhook` measures 60 s


@pytest.fixture
def webhook_service(stack, endpoint) -> Iterator[int]:
    """The webhook service, caught up with the alerts earlier tests published (delivered to an
    endpoint that is up), so that it is ready."""
    endpoint.up()
    stack.start_service("webhook", env={"STEADYEYE_WEBHOOK_URL": endpoint.url})
    try:
        stack.wait_ready("webhook")
        yield stack.service_ports["webhook"]
    finally:
        stack.stop_service("webhook")


@pytest.mark.stack
def test_a_dead_endpoint_delays_no_alert_and_each_is_delivered_once_in_order_after_it_returns(
    pipeline, endpoint, webhook_service
):
    endpoint.down()  # nothing listens on its port
    for camera_id in CAMERAS:
        replay(pipeline, camera_id)
    topic = {c: pipeline.read_messages(pipeline.topics.alerts, Alert, c, 3) for c in CAMERAS}
    assert all(len(alerts) == 3 for alerts in topic.values()), topic  # published meanwhile
    assert wait_for(lambda: readyz(webhook_service) == 503, 10), "webhook never reported down"
    time.sleep(OUTAGE_S)

    endpoint.up()

    def ours() -> list[Delivery]:
        return [d for d in endpoint.received if d.camera_id in CAMERAS]

    assert wait_for(lambda: len(ours()) >= 6, 60), ours()
    time.sleep(2)  # a duplicate would arrive in this time
    published = [a.alert_id for alerts in topic.values() for a in alerts]
    assert sorted(d.alert_id for d in ours()) == sorted(published)
    for camera_id, alerts in topic.items():
        delivered = [d.alert_id for d in ours() if d.camera_id == camera_id]
        assert delivered == [a.alert_id for a in alerts], f"{camera_id}: order changed"
    assert all(d.headers["Idempotency-Key"] == d.alert_id for d in ours())
    assert wait_for(lambda: readyz(webhook_service) == 200, 10)
