"""compose.yaml, the one-host layout, checked against the Compose Specification's JSON schema (the
copy check-jsonschema vendors, installed by scripts/install-helm-tools.sh) and against the Helm
chart: the same services with the same STEADYEYE_* wiring, settings the services accept, the
same topics, Triton on a GPU and traces to Jaeger over OTLP."""

from __future__ import annotations

import json
import re
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_helm import (
    ALL_SERVICES,
    DEPLOYMENT,
    by_kind,
    ci_file,
    container_env,
    ensure_tools,
    fullname,
    render,
)

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose.yaml"
# Settings that connect a service to the rest of the system: each layout must set them.
WIRING = re.compile(
    r"^STEADYEYE_\w+_(BOOTSTRAP_SERVERS|URL|TRITON_URL|CAMERAS_FILE|RULES_FILE|STRATEGIES_FILE)$"
)
# What compose sets beside the chart, by service: on one host ingest runs its cameras file (one
# replica); on Kubernetes the cameras topic's (`steadyeye cameras apply`, any number of replicas).
# The rollout controller: one Triton sharing the repository here, on Kubernetes every Triton pod
# through EndpointSlices.
COMPOSE_ONLY = {
    "ingest": {"STEADYEYE_INGEST_CAMERAS_FILE"},
    "rollout": {"STEADYEYE_ROLLOUT_TRITON_URL"},
}


@pytest.fixture(scope="session")
def helm() -> Path:
    return ensure_tools()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # resolves the <<: merge keys, as Compose does


def steadyeye_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services run from the Steadyeye image, by their module name (services.<name>)."""
    out = {}
    for spec in compose["services"].values():
        command = spec.get("command") or []
        if spec.get("image", "").startswith("steadyeye") and command:
            out[command[0].removeprefix("services.")] = spec
    return out


# What `docker compose` would be given in .env (see the top of compose.yaml).
DOTENV = {"WEBHOOK_URL": "https://hooks.example.com/t0ken", "CAMERAS_FILE": "./cameras.yaml"}


def interpolated(value: str) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} with DOTENV (any REDIS_PASSWORD_*
    is set too); $$ stays a literal $."""

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(3) or ""
        if name.startswith("REDIS_PASSWORD_"):
            return f"pw-{name.lower()}"
        return DOTENV.get(name, default if match.group(2) == ":-" else "")

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


def environment(spec: dict[str, Any]) -> dict[str, str]:
    env = spec.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolated(str(v)) for k, v in env.items()}


def test_compose_matches_the_compose_specification(helm: Path, compose: dict[str, Any]) -> None:
    import jsonschema

    text = (files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
    schema = json.loads(text)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert not errors, "compose.yaml breaks the Compose Specification:\n" + "\n".join(errors)


def test_compose_settings_are_ones_the_services_accept(compose: dict[str, Any]) -> None:
    from services.alert.settings import AlertSettings
    from services.capture.settings import CaptureSettings
    from services.core.settings import KafkaSettings, RedisSettings, TopicSettings, load
    from services.inference.settings import InferenceSettings
    from services.ingest.settings import IngestSettings
    from services.monitor.settings import MonitorSettings
    from services.preprocess.settings import PreprocessSettings
    from services.rollout.settings import RolloutSettings
    from services.tracking.settings import TrackingSettings
    from services.webhook.settings import WebhookSettings

    classes = {"ingest": IngestSettings, "preprocess": PreprocessSettings,
               "inference": InferenceSettings, "tracking": TrackingSettings,
               "monitor": MonitorSettings, "alert": AlertSettings,
               "webhook": WebhookSettings, "capture": CaptureSettings,
               "rollout": RolloutSettings}  # fmt: skip
    services = steadyeye_services(compose)
    assert services, "no Steadyeye service in compose.yaml"
    for name, spec in services.items():
        env = environment(spec)
        for cls in (classes[name], KafkaSettings, RedisSettings, TopicSettings):
            load(cls, env)  # raises ConfigError naming an unknown or invalid variable


def test_compose_wires_each_service_as_the_chart_does(helm: Path, compose: dict[str, Any]) -> None:
    """For every service both layouts run: compose uses no STEADYEYE_* setting the chart does not
    set, and sets every wiring setting (brokers, Redis, Triton, files) the chart sets."""
    objects = render(helm, ci_file("minimal"), "webhook.existingSecret=hook")
    deployments = by_kind(objects, "Deployment")
    for name, spec in steadyeye_services(compose).items():
        deployment = deployments[fullname(DEPLOYMENT.get(name, name))]
        chart = {k for k in container_env(objects, deployment) if k.startswith("STEADYEYE_")}
        chart |= COMPOSE_ONLY.get(name, set())
        ours = {k for k in environment(spec) if k.startswith("STEADYEYE_")}
        assert ours <= chart, f"{name}: compose sets {sorted(ours - chart)}, the chart does not"
        wiring = {k for k in chart if WIRING.match(k)}
        assert wiring <= ours, f"{name}: compose lacks {sorted(wiring - ours)}"


def test_compose_runs_every_service(compose: dict[str, Any]) -> None:
    assert set(steadyeye_services(compose)) == {*ALL_SERVICES, "rollout"}


def test_capture_is_opt_in_with_its_strategies_and_a_dataset_volume(
    compose: dict[str, Any],
) -> None:
    """capture runs with `--profile capture`, reads the strategies file mounted where its setting
    says (the example by default) and writes the dataset to a named volume, which the image's
    directory owned by its user seeds (the root filesystem is the image's, not writable)."""
    from services.capture.loader import load_strategies

    spec = steadyeye_services(compose)["capture"]
    assert spec["profiles"] == ["capture"]
    env = environment(spec)
    mounts = {}
    for volume in spec["volumes"]:
        source, target, *mode = interpolated(volume).split(":")
        mounts[target] = (source, mode)
    strategies = env["STEADYEYE_CAPTURE_STRATEGIES_FILE"]
    source, mode = mounts[strategies]
    assert mode == ["ro"] and load_strategies(ROOT / source).strategies
    dataset = env["STEADYEYE_CAPTURE_DATASET_URL"]
    assert mounts[dataset] == ("dataset", [])
    assert "dataset" in compose["volumes"], "a named volume, kept by docker compose down"
    assert env["STEADYEYE_CAPTURE_TRITON_URL"] == "triton:8001"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"install -d -o 10001 -g 10001 {dataset}" in dockerfile


def test_triton_reserves_an_nvidia_gpu(compose: dict[str, Any]) -> None:
    triton = compose["services"]["triton"]
    assert triton["image"].startswith("nvcr.io/nvidia/tritonserver:")
    devices = triton["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)
    assert any(a.startswith("--model-repository=") for a in triton["command"])
    preprocess = environment(steadyeye_services(compose)["preprocess"])
    assert preprocess["STEADYEYE_PREPROCESS_TRITON_URL"] == "triton:8001"


def test_traces_go_to_jaeger_over_otlp(compose: dict[str, Any]) -> None:
    jaeger = compose["services"]["jaeger"]
    assert str(jaeger["environment"]["COLLECTOR_OTLP_ENABLED"]).lower() == "true"
    for name, spec in steadyeye_services(compose).items():
        endpoint = environment(spec).get("OTEL_EXPORTER_OTLP_ENDPOINT")
        assert endpoint == "http://jaeger:4317", f"{name} sends traces to {endpoint}"
    triton = " ".join(compose["services"]["triton"]["command"])
    if "mode=opentelemetry" in triton:  # Triton's spans: OTLP over HTTP
        assert "opentelemetry,url=http://jaeger:4318/v1/traces" in triton


def test_topics_are_the_charts(compose: dict[str, Any]) -> None:
    """compose's topic-init step creates the chart's topics with its default partitions and
    retention, the cameras topic compacted and kept as the chart's topic Job makes it, and the
    broker takes the services' largest request."""
    values = yaml.safe_load((ROOT / "helm" / "steadyeye" / "values.yaml").read_text())["topics"]
    script = "\n".join(compose["services"]["topics"]["command"])
    loop = re.search(r"for t in ([\w ]+); do", script)
    assert loop, script
    names = {f"steadyeye.{t}.v1" for t in loop.group(1).split()}
    cameras = values["names"]["cameras"]
    assert names | {cameras} == set(values["names"].values()) and cameras not in names
    commands = re.sub(r"\\\n\s*", "", script).splitlines()  # continuation lines joined
    (create,) = [c for c in commands if f"--topic {cameras} " in c]
    assert "--create --if-not-exists" in create
    configs = dict(re.findall(r"--config (\S+)=(\S+)", create))
    assert configs == {"cleanup.policy": "compact", "retention.ms": "-1",
                       "min.compaction.lag.ms": "0"}  # fmt: skip
    assert f"--partitions {values['partitions']}" in create
    assert f"--partitions {values['partitions']}" in script
    assert f"retention.ms={values['retentionMs']}" in script
    kafka = compose["services"]["kafka"]["environment"]
    assert str(kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]) == "false"
    assert int(kafka["KAFKA_MESSAGE_MAX_BYTES"]) >= 4 * 1024 * 1024  # max_request_size default


REDIS_USERS = {
    "ingest", "preprocess", "inference", "tracking", "monitor", "alert", "capture", "rollout",
}  # fmt: skip


def test_each_service_connects_to_redis_as_its_own_user(compose: dict[str, Any]) -> None:
    from services.core import redis_acl

    assert set(redis_acl.RULES) == REDIS_USERS
    for name, spec in steadyeye_services(compose).items():
        env = environment(spec)
        if name not in REDIS_USERS:
            assert "STEADYEYE_REDIS_PASSWORD" not in env, f"{name} needs no Redis user"
            continue
        assert env["STEADYEYE_REDIS_USERNAME"] == redis_acl.username(name)
        assert env["STEADYEYE_REDIS_PASSWORD"] == f"pw-redis_password_{name}"


def test_composes_redis_starts_with_exactly_the_services_acl_rules(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """Run the redis container's own start script against the real redis-server: each user may
    do what its service needs and nothing else, and there is no anonymous access."""
    import shutil
    import socket
    import subprocess

    import redis

    from services.core import redis_acl
    from steadyeye.embedded.stack import free_port

    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    spec = compose["services"]["redis"]
    assert spec["entrypoint"] == ["/bin/sh", "-c"]
    port = free_port()
    script = (
        spec["command"][0]
        .replace("$$", "$")  # Compose's escape for a literal $
        .replace("/tmp/users.acl", str(tmp_path / "users.acl"))
        .replace("exec redis-server", f"exec {server} --port {port} --bind 127.0.0.1")
    )
    passwords = {f"REDIS_PASSWORD_{n.upper()}": f"pw-{n}" for n in [*REDIS_USERS, "admin"]}
    process = subprocess.Popen(["/bin/sh", "-c", script], env=passwords, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        url = f"redis://127.0.0.1:{port}/0"
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis.from_url(url).ping()
        admin = redis.Redis.from_url(url, password="pw-admin")
        users = admin.acl_list()
        for name in REDIS_USERS:
            [line] = [u for u in users if u.startswith(f"user {redis_acl.username(name)} ")]
            # The same rules applied by hand, as Redis lists them back.
            admin.execute_command("ACL", "DELUSER", "probe")
            admin.execute_command("ACL", "SETUSER", "probe", *redis_acl.rules(name))
            [want] = [u for u in admin.acl_list() if u.startswith("user probe ")]
            rules = [word for word in line.split()[2:] if not word.startswith("#")]  # no hash
            assert rules == want.split()[2:], name
            client = redis.Redis.from_url(url, username=redis_acl.username(name),
                                          password=f"pw-{name}")  # fmt: skip
            assert client.ping()
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.flushall()
    finally:
        process.terminate()
        process.wait(10)
