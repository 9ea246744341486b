"""A misspelled or invalid setting stops a service at start with a clear error and exit 1."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.alert.settings import AlertSettings
from services.core.errors import ConfigError
from services.core.settings import KafkaSettings, RedisSettings, load
from services.inference.settings import InferenceSettings


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"STEADYEYE_INFERENCE_TRITON_ULR": "x:1"}, "did you mean STEADYEYE_INFERENCE_TRITON_URL"),
        ({"STEADYEYE_INFERENCE_MAX_IN_FLIGHT": "0"}, "STEADYEYE_INFERENCE_MAX_IN_FLIGHT='0'"),
        ({"STEADYEYE_INFERENCE_RETRIES": "many"}, "valid integer"),
    ],
)
def test_invalid_settings_are_reported_by_name(environ, message):
    with pytest.raises(ConfigError, match="invalid configuration") as error:
        load(InferenceSettings, environ)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"STEADYEYE_KAFKA_CLIENT": "librdkafak"}, "STEADYEYE_KAFKA_CLIENT='librdkafak'"),
        (
            {"STEADYEYE_KAFKA_MAX_POLL_INTERVAL_MS": "3000"},
            "STEADYEYE_KAFKA_MAX_POLL_INTERVAL_MS (3000) must be at least "
            "STEADYEYE_KAFKA_SESSION_TIMEOUT_MS (45000)",
        ),
    ],
)
def test_kafka_settings_the_clients_would_refuse_are_reported_by_name(environ, message):
    with pytest.raises(ConfigError, match="invalid configuration") as error:
        load(KafkaSettings, environ)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("group", "old", "new"),
    [
        (AlertSettings, "STEADYEYE_ALERT_WEBHOOK_URL", "renamed, now STEADYEYE_WEBHOOK_URL"),
        (RedisSettings, "STEADYEYE_REDIS_CLAIM_CHECK_TTL_S", "now STEADYEYE_CLAIM_CHECK_TTL_S"),
    ],
)
def test_a_renamed_setting_names_its_new_place(group, old, new):
    with pytest.raises(ConfigError, match=new):
        load(group, {old: "1", "STEADYEYE_ALERT_RULES_FILE": "rules.yaml"})


def test_settings_of_other_services_are_not_this_services_business():
    settings = load(InferenceSettings, {"STEADYEYE_PREPROCESS_WHATEVER": "1"})
    assert settings.max_in_flight == 8


def test_secrets_never_print():
    settings = load(KafkaSettings, {"STEADYEYE_KAFKA_SASL_PASSWORD": "hunter2"})
    assert "hunter2" not in repr(settings)
    assert settings.sasl_password.get_secret_value() == "hunter2"


@pytest.mark.parametrize("service", ["ingest", "preprocess", "inference"])
def test_a_service_with_a_misspelled_setting_exits_1(service):
    env = {**os.environ, f"STEADYEYE_{service.upper()}_HTTP_PROT": "9000"}
    done = subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"did you mean STEADYEYE_{service.upper()}_HTTP_PORT" in done.stderr


@pytest.mark.parametrize("client", ["librdkafka", "kafka-python"])
def test_a_service_that_cannot_reach_kafka_says_so_and_exits_1(client):
    env = {
        **os.environ,
        "STEADYEYE_KAFKA_CLIENT": client,
        "STEADYEYE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "STEADYEYE_TRACKING_HTTP_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.tracking"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "cannot reach Kafka at 127.0.0.1:9" in done.stderr
