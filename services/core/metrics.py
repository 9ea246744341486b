"""Prometheus metrics every service exposes; service-specific ones live with their service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

consumed = Counter(
    "steadyeye_messages_consumed_total", "Records read from Kafka", ["service", "topic"]
)
produced = Counter(
    "steadyeye_messages_produced_total", "Records written to Kafka", ["service", "topic"]
)
failed = Counter(
    "steadyeye_messages_failed_total",
    "Records whose handling failed, by kind (poison or transient)",
    ["service", "kind"],
)
dead_lettered = Counter(
    "steadyeye_messages_dead_lettered_total", "Records sent to the dead-letter topic", ["service"]
)
handle_seconds = Histogram(
    "steadyeye_handle_duration_seconds",
    "Time to handle one polled batch, per record",
    ["service"],
    buckets=LATENCY_BUCKETS,
)
end_to_end_seconds = Histogram(
    "steadyeye_end_to_end_latency_seconds",
    "From capture time to this service's output",
    ["service"],
    buckets=LATENCY_BUCKETS,
)
consumer_lag = Gauge(
    "steadyeye_consumer_lag_messages",
    "Records behind the partition's high-water mark",
    ["service", "topic", "partition"],
)
