"""One frame is one trace from ingest to alert, exported over real OTLP/gRPC."""

from __future__ import annotations

import time

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto

from tests.conftest import PROBE_CAMERA

pytestmark = pytest.mark.stack
SERVICES = ["ingest", "preprocess", "inference", "tracking", "alert"]


def probe_traces(otlp, timeout_s: float = 60.0) -> dict:
    """Traces with a span about the probe camera, once every service has exported its span."""
    deadline = time.monotonic() + timeout_s
    while True:
        traces = {
            trace_id: spans
            for trace_id, spans in otlp.traces().items()
            if any(s.attributes.get("steadyeye.camera_id") == PROBE_CAMERA for s in spans)
        }
        services = {s.service for spans in traces.values() for s in spans}
        if services >= {f"steadyeye-{name}" for name in SERVICES} or time.monotonic() > deadline:
            return traces
        time.sleep(0.5)


def test_one_frame_through_the_pipeline_is_exactly_one_trace(stack, otlp):
    traces = probe_traces(otlp)

    assert len(traces) == 1, f"{len(traces)} traces for one frame"
    [spans] = traces.values()
    by_service = {name: [s for s in spans if s.service == f"steadyeye-{name}"] for name in SERVICES}
    assert all(by_service.values()), {k: len(v) for k, v in by_service.items()}
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if not s.parent_id]
    assert [r.service for r in roots] == ["steadyeye-ingest"]
    assert all(s.parent_id in ids for s in spans if s.parent_id)

    [publish] = by_service["ingest"]
    assert publish.kind == SpanProto.SPAN_KIND_PRODUCER
    for name in SERVICES[1:]:
        [consumer] = [s for s in by_service[name] if s.kind == SpanProto.SPAN_KIND_CONSUMER]
        assert consumer.attributes["steadyeye.camera_id"] == PROBE_CAMERA
        assert consumer.attributes["steadyeye.frame_id"] == 0
        assert consumer.attributes["messaging.system"] == "kafka"
        assert consumer.resource["service.version"]
    [triton] = [s for s in by_service["inference"] if s.kind == SpanProto.SPAN_KIND_CLIENT]
    assert triton.attributes["steadyeye.model.name"] == "yolox_nano"
    assert triton.attributes["steadyeye.model.version"] == "1"
    inference = next(s for s in by_service["inference"] if s.kind == SpanProto.SPAN_KIND_CONSUMER)
    assert inference.attributes["steadyeye.detection_count"] >= 4
    assert inference.attributes["steadyeye.batch_size"] >= 1
    tracking = next(s for s in by_service["tracking"] if s.kind == SpanProto.SPAN_KIND_CONSUMER)
    assert "steadyeye.track_count" in tracking.attributes
