"""How the webhook benchmark counts: alerts per phase, deliveries once, duplicates, order."""

from __future__ import annotations

import pytest

from steadyeye.bench.webhook import CAMERA, _summary
from steadyeye.v1.alerts_pb2 import Alert
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.webhook_sink import Delivery, WebhookSink

MARKS = {"start": 0.0, "down": 10.0, "up": 20.0, "end": 30.0}


def published(alert_id: str, at: float) -> tuple[Alert, float]:
    ref = FrameRef(camera_id=CAMERA, frame_id=1)
    ref.capture_time.FromMilliseconds(int((at - 0.05) * 1000))  # 50 ms before it was published
    return Alert(alert_id=alert_id, ref=ref), at


@pytest.mark.parametrize(
    ("case", "delivered", "once", "missing", "duplicates", "order_kept"),
    [
        ("all once, in order", ["a", "b", "c"], 3, 0, 0, True),
        ("one twice", ["a", "b", "b", "c"], 2, 0, 1, True),
        ("one missing", ["a", "c"], 2, 1, 0, True),
        ("reordered", ["b", "a", "c"], 3, 0, 0, False),
    ],
)
def test_deliveries_are_counted_against_what_was_published(
    case, delivered, once, missing, duplicates, order_kept
):
    alerts = [published("a", 5.0), published("b", 12.0), published("c", 15.0)]
    sink = WebhookSink(received=[Delivery(i, CAMERA, {}, {}, 21.0) for i in delivered])
    summary = _summary(alerts, sink, MARKS, recovered_s=1.0)
    delivery = summary["delivery"]
    assert delivery["delivered_once"] == once, case
    assert delivery["not_delivered"] == missing, case
    assert delivery["duplicates"] == duplicates, case
    assert delivery["order_kept"] is order_kept, case
    phases = summary["alerts_latency_ms"]
    assert (phases["endpoint_up_before"]["alerts"], phases["endpoint_down"]["alerts"]) == (1, 2)
    assert phases["endpoint_down"]["p50"] == pytest.approx(50, abs=1)
    assert summary["ratios"]["down_over_up_p50"] == pytest.approx(1.0, abs=0.05)
