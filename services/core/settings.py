"""Typed settings from the environment, validated at start-up.

Every variable is STEADYEYE_<GROUP>_<NAME>. A process checks each group it uses for names it does
not know, so a misspelled variable is a start-up error with a suggestion instead of a silently
ignored default. Groups that belong to other services are left alone (compose and Helm share one
environment across services).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.core.errors import ConfigError

ROOT_PREFIX = "STEADYEYE_"
# Settings that moved: a start-up error names the new place instead of a close match.
RENAMED = {
    "STEADYEYE_ALERT_WEBHOOK_URL": "STEADYEYE_WEBHOOK_URL (the webhook service)",
    "STEADYEYE_ALERT_WEBHOOK_TIMEOUT_S": "STEADYEYE_WEBHOOK_TIMEOUT_S (the webhook service)",
    "STEADYEYE_ALERT_WEBHOOK_RETRIES": "STEADYEYE_WEBHOOK_RETRY_FOR_S (the webhook service)",
    "STEADYEYE_REDIS_CLAIM_CHECK_THRESHOLD_BYTES": "STEADYEYE_CLAIM_CHECK_THRESHOLD_BYTES",
    "STEADYEYE_REDIS_CLAIM_CHECK_TTL_S": "STEADYEYE_CLAIM_CHECK_TTL_S",
}


class Group(BaseSettings):
    """One prefix of environment variables. Subclasses set `model_config = group("NAME")`."""

    model_config = SettingsConfigDict(env_prefix=ROOT_PREFIX, extra="forbid")


def group(name: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=f"{ROOT_PREFIX}{name}_", extra="forbid", frozen=True)


class KafkaSettings(Group):
    model_config = group("KAFKA")

    bootstrap_servers: str = "127.0.0.1:9092"
    # librdkafka does the protocol work in C: 10x less CPU per record than kafka-python
    # (docs/performance.md). kafka-python remains for platforms without confluent-kafka wheels.
    client: Literal["librdkafka", "kafka-python"] = "librdkafka"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    # Consumer-group timing. Kafka's defaults suit Apache Kafka; the embedded broker completes a
    # group join only after max_poll_interval_ms, so the embedded stack shortens these.
    max_poll_interval_ms: int = Field(300_000, ge=1000)
    session_timeout_ms: int = Field(45_000, ge=1000)
    heartbeat_interval_ms: int = Field(3_000, ge=100)
    max_poll_records: int = Field(32, ge=1, le=10_000)
    # How often an idle consumer asks again. The broker usually answers as soon as a record
    # arrives, not always: at 200 ms the demo's latency rose; at 50 ms each idle service spent
    # 5% of a core. 100 ms is the measured compromise (docs/performance.md).
    fetch_max_wait_ms: int = Field(100, ge=0)
    # Producer batching, chosen by measurement (docs/performance.md).
    linger_ms: int = Field(2, ge=0)
    compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = None
    max_request_size: int = Field(4 * 1024 * 1024, ge=1024)

    @model_validator(mode="after")
    def _poll_interval_covers_session(self) -> KafkaSettings:
        # librdkafka refuses otherwise; a member must not be evicted for polling slowly
        # before it could have been for missing heartbeats.
        if self.max_poll_interval_ms < self.session_timeout_ms:
            raise ValueError(
                f"STEADYEYE_KAFKA_MAX_POLL_INTERVAL_MS ({self.max_poll_interval_ms}) must be at "
                f"least STEADYEYE_KAFKA_SESSION_TIMEOUT_MS ({self.session_timeout_ms})"
            )
        return self


class RedisSettings(Group):
    model_config = group("REDIS")

    url: str = "redis://127.0.0.1:6379/0"
    # Each service connects as its own ACL user (services/core/redis_acl.py): it can reach only
    # the keys and commands it needs. Unset: the URL's user, or Redis's `default`.
    username: str | None = None
    password: SecretStr | None = None


class ClaimCheckSettings(Group):
    """Where payloads too large for a Kafka record wait, while Kafka carries their key."""

    model_config = group("CLAIM_CHECK")

    # redis: any host reads them. shm: files in a directory on a tmpfs that every service
    # mounts (one host): no network copy and no Redis CPU per frame (docs/performance.md).
    store: Literal["redis", "shm"] = "redis"
    shm_dir: Path = Path("/dev/shm/steadyeye")
    threshold_bytes: int = Field(256 * 1024, ge=0)
    # Read payloads are deleted by their only reader; the TTL bounds what a crash leaves.
    ttl_s: int = Field(120, ge=1)


class TopicSettings(Group):
    model_config = group("TOPIC")

    # The cameras (compacted, keyed by camera id): what ingest replicas run.
    cameras: str = "steadyeye.cameras.v1"
    frames: str = "steadyeye.frames.v1"
    ready: str = "steadyeye.ready.v1"
    detections: str = "steadyeye.detections.v1"
    tracks: str = "steadyeye.tracks.v1"
    alerts: str = "steadyeye.alerts.v1"
    drift: str = "steadyeye.drift.v1"
    deadletter: str = "steadyeye.deadletter.v1"
    # A rollout's candidate outputs (never read downstream) and its steps (services/rollout).
    shadow: str = "steadyeye.shadow.v1"
    rollouts: str = "steadyeye.rollouts.v1"
    # Tier switches of inference: a lighter model serving while the primary breaks its budget.
    serving: str = "steadyeye.serving.v1"
    partitions: int = Field(4, ge=1)


class ServiceSettings(Group):
    """Settings every service has; a service's own settings extend this under its own prefix."""

    http_port: int = Field(8080, ge=0, le=65535)
    http_host: str = "0.0.0.0"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # A service whose loop makes no progress for this long while input waits is reported unready.
    watchdog_s: float = Field(60.0, gt=0)


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S], environ: dict[str, str] | None = None) -> S:
    """Build `cls` from the environment; unknown names under its prefix are errors."""
    env = dict(os.environ if environ is None else environ)
    prefix = str(cls.model_config.get("env_prefix", ""))
    known = {prefix + name.upper() for name in cls.model_fields}
    unknown = sorted(k for k in env if k.startswith(prefix) and k not in known)
    problems = [_unknown_message(k, known) for k in unknown]
    try:
        # model_validate, not __init__: only `env` counts, never a second read of os.environ.
        settings = cls.model_validate(
            {k[len(prefix) :].lower(): v for k, v in env.items() if k in known}
        )
    except ValidationError as exc:
        for err in exc.errors():
            if not err["loc"]:  # a rule across fields: its message names them
                problems.append(err["msg"])
                continue
            name = prefix + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{name}={env.get(name, '<unset>')!r}: {err['msg']}")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return settings


def _unknown_message(name: str, known: set[str]) -> str:
    if name in RENAMED:
        return f"{name}: renamed, now {RENAMED[name]}"
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{name}: unknown setting{hint}; known: {', '.join(sorted(known))}"
