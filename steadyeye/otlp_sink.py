"""A real OTLP/gRPC trace receiver, in process: what Jaeger or a collector would receive.
Used by the tests (to inspect traces) and the tracing benchmark (as the export target)."""

from __future__ import annotations

import threading
from collections import defaultdict
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class Span:
    def __init__(self, service: str, span, resource: dict[str, str]) -> None:
        self.service = service
        self.name = span.name
        self.kind = span.kind
        self.trace_id = span.trace_id.hex()
        self.span_id = span.span_id.hex()
        self.parent_id = span.parent_span_id.hex()
        self.resource = resource
        self.attributes = {a.key: _value(a.value) for a in span.attributes}


def _value(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class OtlpReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans: list[Span] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def Export(self, request, context):  # noqa: N802 - gRPC method name
        with self._lock:
            for resource_spans in request.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                service = resource.get("service.name", "")
                for scope in resource_spans.scope_spans:
                    self.spans += [Span(service, s, resource) for s in scope.spans]
        return trace_service_pb2.ExportTraceServiceResponse()

    def traces(self) -> dict[str, list[Span]]:
        with self._lock:
            grouped: dict[str, list[Span]] = defaultdict(list)
            for span in self.spans:
                grouped[span.trace_id].append(span)
            return dict(grouped)

    def start(self) -> OtlpReceiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)
