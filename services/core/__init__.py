"""The shared core: the only place that knows Kafka, Redis, tracing, metrics and configuration.

A service is a `Handler` plus its settings; `run_service` does everything else.
"""
