"""OpenTelemetry set-up and W3C trace context carried in Kafka headers.

Configured by the standard OTEL_* variables. Without an exporter configured the global no-op
tracer stays in place, so tracing off costs nothing but a few attribute look-ups.
"""

from __future__ import annotations

import os

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter

from services.core.messages import Headers

_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def configure(service_name: str, version: str) -> None:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return
    if not any(os.environ.get(v) for v in _ENDPOINT_VARS):
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {"service.name": service_name, "service.version": version}
    for attr, var in (("k8s.pod.name", "K8S_POD_NAME"), ("k8s.node.name", "K8S_NODE_NAME")):
        if os.environ.get(var):
            attributes[attr] = os.environ[var]
    # The sampler comes from OTEL_TRACES_SAMPLER(_ARG); parent-based is the SDK default.
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(_exporter()))
    trace.set_tracer_provider(provider)


def _exporter():
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    if protocol.startswith("http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter()


def shutdown() -> None:
    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()


class _HeaderGetter(Getter[Headers]):
    def get(self, carrier: Headers, key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier if k == key]
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [k for k, _ in carrier]


class _HeaderSetter(Setter[Headers]):
    def set(self, carrier: Headers, key: str, value: str) -> None:
        carrier.append((key, value.encode("latin-1")))


def extract(headers: Headers | None) -> Context:
    return propagate.extract(headers or [], getter=_HeaderGetter())


def inject(headers: Headers, context: Context | None = None) -> Headers:
    propagate.inject(headers, context=context, setter=_HeaderSetter())
    return headers
