"""`steadyeye bench webhook`: the webhook endpoint goes down while alerts fire.

The embedded stack streams the sample clip at its real rate with the demo rules, and the
webhook service delivers alerts to an in-process endpoint. Three phases: endpoint up, endpoint
down for `outage_s`, endpoint up again until every alert is delivered (then a while longer, so a
duplicate would show). Alert latency on steadyeye.alerts.v1 (publish time minus the firing
frame's capture time) is compared between the phases: the outage must not move it.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console

from services.core.messages import decode
from steadyeye.embedded.stack import Stack
from steadyeye.v1.alerts_pb2 import Alert
from steadyeye.webhook_sink import WebhookSink

CAMERA = "demo"  # the camera the example rules are written for
SETTLE_S = 10.0  # after the last delivery: a duplicate would arrive in this time


class _AlertReader:
    """Alerts as published: (alert, publish time in seconds), in partition order."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        partitions = [TopicPartition(topic, p) for p in self._consumer.partitions_for_topic(topic)]
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)
        self.alerts: list[tuple[Alert, float]] = []

    def poll(self) -> None:
        for records in self._consumer.poll(timeout_ms=200).values():
            for r in records:
                self.alerts.append((decode(r.value, r.headers, Alert), r.timestamp / 1e3))

    def close(self) -> None:
        self._consumer.close()


def _latency_ms(alerts: list[tuple[Alert, float]]) -> dict[str, float | int]:
    if not alerts:
        return {"alerts": 0}
    lags = [(at - a.ref.capture_time.ToNanoseconds() / 1e9) * 1e3 for a, at in alerts]
    p50, p95, p99 = np.percentile(lags, [50, 95, 99])
    return {"alerts": len(alerts), "p50": round(p50, 1), "p95": round(p95, 1), "p99": round(p99, 1)}


def bench_webhook(
    source: str, outage_s: float, before_s: float, console: Console, rules: Path
) -> dict:
    sink = WebhookSink().up()
    say = console.print
    stack = Stack(
        rules_file=rules,
        say=lambda text: say(f"[dim]{text}[/dim]"),
        fresh_redis=True,
        webhook_url=sink.url,
    )
    stack.use_camera({"id": CAMERA, "source": source, "pace": "realtime", "loop": True})
    with stack:
        reader = _AlertReader(stack.bootstrap, stack.topics.alerts)
        try:
            marks = {"start": time.time()}
            _wait(reader, before_s, f"endpoint up for {before_s:.0f}s", say)
            marks["down"] = time.time()
            sink.down()
            _wait(reader, outage_s, f"endpoint DOWN for {outage_s:.0f}s", say)
            marks["up"] = time.time()
            sink.up()
            fired = {a.alert_id for a, at in reader.alerts if at < marks["up"]}
            deadline = time.monotonic() + outage_s + 120
            while not fired <= {d.alert_id for d in sink.received}:
                if time.monotonic() > deadline:
                    break
                reader.poll()
            recovered_s = time.time() - marks["up"]
            _wait(reader, SETTLE_S, "settling: a duplicate would arrive now", say)
            marks["end"] = time.time()
        finally:
            reader.close()
    return _summary(reader.alerts, sink, marks, recovered_s)


def _wait(reader: _AlertReader, seconds: float, status: str, say) -> None:
    say(f"{status} ({len(reader.alerts)} alerts so far)")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        reader.poll()


def _summary(
    alerts: list[tuple[Alert, float]], sink: WebhookSink, marks: dict[str, float], recovered_s
) -> dict:
    def between(start: str, end: str) -> list[tuple[Alert, float]]:
        return [(a, at) for a, at in alerts if marks[start] <= at < marks[end]]

    published = [a.alert_id for a, at in alerts if at < marks["up"]]  # before recovery began
    delivered = Counter(d.alert_id for d in sink.received)
    order = [a.alert_id for a, _ in alerts]  # one camera, one partition: the topic's order
    # First deliveries, in arrival order (a duplicate does not reorder).
    delivered_order = list(dict.fromkeys(d.alert_id for d in sink.received if d.alert_id in order))
    fired_down = {a.alert_id: at for a, at in between("down", "up")}
    waits = [d.at - fired_down[d.alert_id] for d in sink.received if d.alert_id in fired_down]
    up, down = _latency_ms(between("start", "down")), _latency_ms(between("down", "up"))
    return {
        "outage_s": round(marks["up"] - marks["down"], 1),
        "alerts_latency_ms": {
            "endpoint_up_before": up,
            "endpoint_down": down,
            "endpoint_up_after": _latency_ms(between("up", "end")),
        },
        # 1.0: the outage did not move alert latency (the baseline is the same run's first phase)
        "ratios": {
            f"down_over_up_{q}": round(down[q] / up[q], 2) if q in up and q in down else None
            for q in ("p50", "p95")
        },
        "delivery": {
            "alerts_published_before_recovery": len(published),
            "delivered_once": sum(1 for i in published if delivered[i] == 1),
            "not_delivered": sum(1 for i in published if delivered[i] == 0),
            "duplicates": sum(n - 1 for n in delivered.values() if n > 1),
            "order_kept": delivered_order == [i for i in order if i in delivered],
            "all_delivered_s_after_recovery": round(recovered_s, 1),
            "max_wait_of_an_alert_fired_during_outage_s": round(max(waits), 1) if waits else None,
        },
    }
