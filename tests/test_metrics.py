"""Every service's /metrics parses as Prometheus text and its counters move when frames flow."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_for

pytestmark = pytest.mark.stack

# Metric families each service must expose, and which of them must have moved.
EXPECTED = {
    "ingest": [
        "steadyeye_ingest_frames",
        "steadyeye_camera_last_frame_timestamp_seconds",
        "steadyeye_messages_produced",
    ],
    "preprocess": [
        "steadyeye_messages_consumed",
        "steadyeye_messages_produced",
        "steadyeye_handle_duration_seconds",
        "steadyeye_frame_brightness",
        "steadyeye_end_to_end_latency_seconds",
    ],
    "inference": [
        "steadyeye_messages_consumed",
        "steadyeye_messages_produced",
        "steadyeye_detections",
        "steadyeye_detection_confidence",
        "steadyeye_triton_request_duration_seconds",
        "steadyeye_end_to_end_latency_seconds",
    ],
    "tracking": ["steadyeye_messages_consumed", "steadyeye_messages_produced", "steadyeye_tracks"],
    "alert": ["steadyeye_messages_consumed"],
}


def scrape(port: int) -> dict[str, float]:
    """Sum of each family's samples (counters' _total, histograms' _count)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith(("_bucket", "_sum", "_created")):
                continue
            totals[family.name] = totals.get(family.name, 0.0) + sample.value
    return totals


@pytest.mark.parametrize("service", list(EXPECTED))
def test_service_metrics_move_after_frames_flow(stack, pipeline, camera_id, bus_jpg, service):
    for frame_id in (0, 1):  # two frames: a track is confirmed on its second
        pipeline.send_frame(camera_id, frame_id, bus_jpg)
    assert len(pipeline.read(pipeline.topics.tracks, lambda r: r.key == camera_id.encode(), 2)) == 2

    port = stack.service_ports[service]

    # Ingest's own counters move with the probe camera, which publishes on its own schedule.
    def still() -> list[str]:
        metrics = scrape(port)
        return [name for name in EXPECTED[service] if metrics.get(name, 0) <= 0]

    wait_for(lambda: not still(), 30, 0.2)
    assert not still(), f"{service}: {still()} did not move"
    metrics = scrape(port)
    if service != "ingest":  # a gauge that is rightly 0 once the consumer caught up
        assert "steadyeye_consumer_lag_messages" in metrics


def test_dashboard_and_alert_rules_use_only_metrics_the_services_expose(stack):
    root = Path(__file__).resolve().parents[1] / "observability"
    text = (root / "prometheus-rules.yaml").read_text()
    yaml.safe_load(text)  # valid YAML
    text += (root / "grafana-dashboard.json").read_text()
    json.loads((root / "grafana-dashboard.json").read_text())
    used = {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"steadyeye_\w+", text)}
    exposed: set[str] = set()
    for port in stack.service_ports.values():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            for family in text_string_to_metric_families(response.read().decode()):
                exposed |= {family.name, f"{family.name}_total"}
    assert used - exposed == set()
