"""Writes helm/steadyeye/values.schema.json, the chart's values schema (JSON Schema draft-07, which
every Helm 3 release understands). Every object is closed (additionalProperties: false), so a
misspelled key anywhere fails `helm install/upgrade/template`. The services' settings, the
cameras file and the alert rules come from the code's own pydantic models: the chart accepts
exactly the names and values the services accept.

    .venv/bin/python helm/values_schema.py          # rewrite the schema after a change
    .venv/bin/python helm/values_schema.py --check  # exit 1 when the committed one is stale

tests/test_helm.py runs the check.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "helm" / "steadyeye" / "values.schema.json"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pydantic import BaseModel  # noqa: E402

from services.alert.rules import RuleSet  # noqa: E402
from services.alert.settings import AlertSettings  # noqa: E402
from services.capture.settings import CaptureSettings  # noqa: E402
from services.capture.strategies import StrategyFile  # noqa: E402
from services.core.settings import (  # noqa: E402
    ClaimCheckSettings,
    KafkaSettings,
    RedisSettings,
)
from services.inference.settings import InferenceSettings  # noqa: E402
from services.inference.tiers_file import TiersFile  # noqa: E402
from services.ingest.cameras import Camera  # noqa: E402
from services.ingest.settings import IngestSettings  # noqa: E402
from services.monitor.settings import MonitorSettings  # noqa: E402
from services.preprocess.settings import PreprocessSettings  # noqa: E402
from services.rollout.policy import Policy  # noqa: E402
from services.tracking.settings import TrackingSettings  # noqa: E402
from services.webhook.settings import WebhookSettings  # noqa: E402

Schema = dict[str, Any]

# Settings the chart sets itself (wiring, credentials from Secrets, probes' port): not values.
SERVICE_MANAGED = {"http_port", "http_host", "log_level", "watchdog_s"}
CHART_MANAGED = {
    "kafka": {
        "bootstrap_servers",
        "security_protocol",
        "sasl_mechanism",
        "sasl_username",
        "sasl_password",
        "ssl_cafile",
    },
    "redis": {"url", "username", "password"},
    # A release's services run on many nodes: payloads go through Redis, never a host's tmpfs.
    "claimCheck": {"store", "shm_dir"},
    # cameras_file: never offered; the chart's ingest runs the cameras topic's cameras.
    "ingest": SERVICE_MANAGED | {"cameras_file"},
    "preprocess": SERVICE_MANAGED | {"triton_url", "model_name"},
    "inference": SERVICE_MANAGED | {"triton_url", "model_name", "tiers_file"},
    "tracking": SERVICE_MANAGED,
    "monitor": SERVICE_MANAGED,
    "alert": SERVICE_MANAGED | {"rules_file"},
    "webhook": SERVICE_MANAGED | {"url"},
    "capture": SERVICE_MANAGED | {"strategies_file", "dataset_url", "triton_url", "model_name"},
}
SETTINGS = {
    "kafka": KafkaSettings,
    "redis": RedisSettings,
    "claimCheck": ClaimCheckSettings,
    "ingest": IngestSettings,
    "preprocess": PreprocessSettings,
    "inference": InferenceSettings,
    "tracking": TrackingSettings,
    "monitor": MonitorSettings,
    "alert": AlertSettings,
    "webhook": WebhookSettings,
    "capture": CaptureSettings,
}
# JSON Schema keywords kept from pydantic's output (titles, defaults and the like are dropped, so
# the schema changes only when what is accepted changes).
KEEP = {
    "type",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "items",
    "properties",
    "patternProperties",
    "additionalProperties",
    "propertyNames",
    "required",
    "anyOf",
    "oneOf",
    "$ref",
}

S: Schema = {"type": "string"}
B: Schema = {"type": "boolean"}
NONEMPTY: Schema = {"type": "string", "minLength": 1}
NAME: Schema = {
    "type": "string",
    "pattern": r"^([a-z0-9]([-.a-z0-9]*[a-z0-9])?)?$",
    "maxLength": 253,
}
TOPIC: Schema = {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,249}$"}
TOPIC_KEYS = (
    "cameras",
    "frames",
    "ready",
    "detections",
    "tracks",
    "alerts",
    "drift",
    "deadletter",
    "shadow",
    "rollouts",
    "serving",
)
# The cameras topic is compacted and kept forever: no retention may be set for it.
RETENTION_KEYS = tuple(k for k in TOPIC_KEYS if k != "cameras")


def integer(minimum: int | None = None, maximum: int | None = None) -> Schema:
    out: Schema = {"type": "integer"}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def ref(name: str) -> Schema:
    return {"$ref": f"#/definitions/{name}"}


def closed(properties: Schema, required: list[str] | None = None, doc: str = "") -> Schema:
    out: Schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        out["required"] = required
    if doc:
        out["description"] = doc
    return out


def from_pydantic(node: Any, defs_prefix: str) -> Any:
    """pydantic's JSON schema as draft-07: kept keywords only, tuples (prefixItems) as item
    arrays, $defs references moved under #/definitions/<prefix>."""
    if isinstance(node, list):
        return [from_pydantic(v, defs_prefix) for v in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key == "prefixItems":
            out["items"] = from_pydantic(value, defs_prefix)
        elif key == "$ref":
            out["$ref"] = value.replace("#/$defs/", f"#/definitions/{defs_prefix}")
        elif key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: from_pydantic(v, defs_prefix) for k, v in value.items()}
        elif key in KEEP:
            out[key] = from_pydantic(value, defs_prefix)
    if "patternProperties" in out:  # a map whose keys the model checks: other keys are errors
        out.setdefault("additionalProperties", False)
    return out


def optional_to_plain(field: Schema) -> Schema:
    """A setting `X | None` is X in values (leaving it out means None)."""
    if "anyOf" in field:
        options = [o for o in field["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            rest = {k: v for k, v in field.items() if k != "anyOf"}
            return {**rest, **options[0]}
    return field


def settings(group: str) -> Schema:
    cls = SETTINGS[group]
    prefix = str(cls.model_config.get("env_prefix"))
    fields = from_pydantic(cls.model_json_schema(), "")["properties"]
    offered = {
        name: {"description": prefix + name.upper(), **optional_to_plain(field)}
        for name, field in fields.items()
        if name not in CHART_MANAGED[group]
    }
    return closed(offered, doc=f"{prefix}* settings by lower-case name.")


def model(cls: type[BaseModel], prefix: str, definitions: Schema) -> Schema:
    """A pydantic model's schema, its sub-models added to `definitions` as <prefix><Name>."""
    raw = cls.model_json_schema()
    for name, sub in raw.pop("$defs", {}).items():
        definitions[prefix + name] = from_pydantic(sub, prefix)
    return from_pydantic(raw, prefix)


def build() -> Schema:
    defs: Schema = {}
    defs["quantities"] = {
        "type": "object",
        "additionalProperties": {"type": ["string", "number"]},
        "description": "Resource quantities by resource name (cpu, memory, nvidia.com/gpu).",
    }
    defs["resources"] = closed({"requests": ref("quantities"), "limits": ref("quantities")})
    defs["stringMap"] = {"type": "object", "additionalProperties": {"type": "string"}}
    defs["k8sObject"] = {"type": "object", "description": "A Kubernetes object, passed through."}
    defs["k8sList"] = {"type": "array", "items": {"type": "object"}}
    defs["pullPolicy"] = {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]}
    defs["image"] = closed(
        {"repository": NONEMPTY, "tag": NONEMPTY, "pullPolicy": ref("pullPolicy")},
        required=["repository", "tag"],
    )
    defs["probe"] = closed(
        {
            "periodSeconds": integer(1),
            "failureThreshold": integer(1),
            "timeoutSeconds": integer(1),
            "initialDelaySeconds": integer(0),
        }
    )
    defs["probes"] = closed(
        {"startup": ref("probe"), "readiness": ref("probe"), "liveness": ref("probe")}
    )
    profile = closed(
        {
            "type": {"type": "string", "enum": ["RuntimeDefault", "Localhost", "Unconfined"]},
            "localhostProfile": S,
        }
    )
    selinux = closed({"level": S, "role": S, "type": S, "user": S})
    windows = closed(
        {"gmsaCredentialSpec": S, "gmsaCredentialSpecName": S, "hostProcess": B, "runAsUserName": S}
    )
    defs["podSecurityContext"] = closed(
        {
            "appArmorProfile": profile,
            "fsGroup": integer(0),
            "fsGroupChangePolicy": {"type": "string", "enum": ["OnRootMismatch", "Always"]},
            "runAsGroup": integer(0),
            "runAsNonRoot": B,
            "runAsUser": integer(0),
            "seLinuxOptions": selinux,
            "seLinuxChangePolicy": S,
            "seccompProfile": profile,
            "supplementalGroups": {"type": "array", "items": integer(0)},
            "supplementalGroupsPolicy": S,
            "sysctls": ref("k8sList"),
            "windowsOptions": windows,
        },
        doc="Pod security context (Kubernetes PodSecurityContext).",
    )
    defs["securityContext"] = closed(
        {
            "allowPrivilegeEscalation": B,
            "appArmorProfile": profile,
            "capabilities": closed(
                {"add": {"type": "array", "items": S}, "drop": {"type": "array", "items": S}}
            ),
            "privileged": B,
            "procMount": S,
            "readOnlyRootFilesystem": B,
            "runAsGroup": integer(0),
            "runAsNonRoot": B,
            "runAsUser": integer(0),
            "seLinuxOptions": selinux,
            "seccompProfile": profile,
            "windowsOptions": windows,
        },
        doc="Container security context (Kubernetes SecurityContext).",
    )
    defs["pdb"] = closed({"enabled": B, "maxUnavailable": {"type": ["integer", "string"]}})
    defs["autoscaling"] = closed(
        {
            "enabled": B,
            "minReplicas": integer(1),
            "maxReplicas": integer(1),
            "targetCPUUtilizationPercentage": integer(1, 1000),
            "behavior": ref("k8sObject"),
        }
    )
    defs["keda"] = closed(
        {
            "enabled": B,
            "minReplicas": integer(0),
            "maxReplicas": integer(1),
            "lagThreshold": integer(1),
            "pollingInterval": integer(1),
            "cooldownPeriod": integer(0),
        }
    )
    camera = model(Camera, "camera", defs)
    camera["properties"] = {n: optional_to_plain(f) for n, f in camera["properties"].items()}
    defs["camera"] = camera
    rules = model(RuleSet, "rules", defs)
    rules.pop("required", None)  # the default `content: {}`; the chart asks for rules itself
    rules["description"] = "A rules document (examples/demo-rules.yaml)."
    strategies = model(StrategyFile, "strategies", defs)
    strategies["description"] = "A strategies document (examples/capture-strategies.yaml)."
    policy = model(Policy, "policy", defs)
    policy["description"] = "A rollout policy document (examples/validate-policy.yaml)."
    tiers = model(TiersFile, "tiers", defs)
    tier = defs["tiersTierSpec"]
    tier["properties"] = {n: optional_to_plain(f) for n, f in tier["properties"].items()}
    # Left out, they are the release's Triton and triton.modelName (the chart fills them in).
    tier["required"] = [n for n in tier["required"] if n not in ("triton_url", "model")]
    tier["description"] = "A model tier (services/inference/tiers_file.py); the first: primary."
    tiers_list = {k: v for k, v in tiers["properties"]["tiers"].items() if k != "minItems"}

    # Where and how a pod runs: the same keys for Triton and every service.
    pod_placement: Schema = {
        "podSecurityContext": ref("podSecurityContext"),
        "securityContext": ref("securityContext"),
        "podAnnotations": ref("stringMap"),
        "podLabels": ref("stringMap"),
        "nodeSelector": ref("stringMap"),
        "tolerations": ref("k8sList"),
        "affinity": ref("k8sObject"),
        "topologySpreadConstraints": ref("k8sList"),
        "priorityClassName": S,
    }
    pod_keys: Schema = {
        "logLevel": {"type": "string", "enum": ["", "DEBUG", "INFO", "WARNING", "ERROR"]},
        "watchdogS": {"type": "number", "exclusiveMinimum": 0},
        "terminationGracePeriodSeconds": integer(0),
        "probes": ref("probes"),
        **pod_placement,
        "extraEnv": ref("k8sList"),
        "extraVolumes": ref("k8sList"),
        "extraVolumeMounts": ref("k8sList"),
    }

    def service(name: str, extra: Schema, keda: bool = True, switch: bool = True) -> Schema:
        """A service's block; `switch` False: it has no `enabled` (a Secret in `extra` is);
        `keda` False: no lag scaling (ingest: its group's topic is the cameras, not load)."""
        props: Schema = {"enabled": B} if switch else {}
        props["replicaCount"] = integer(0)
        props["resources"] = ref("resources")
        props["settings"] = settings(name)
        props.update(extra)
        props["autoscaling"] = ref("autoscaling")
        if keda:
            props["keda"] = ref("keda")
        props["pdb"] = ref("pdb")
        for key, value in pod_keys.items():
            props.setdefault(key, value)
        return closed(props)

    top: Schema = {
        "nameOverride": S,
        "fullnameOverride": S,
        "commonLabels": ref("stringMap"),
        "image": closed(
            {
                "repository": NONEMPTY,
                "tag": S,
                "digest": {"type": "string", "pattern": "^(sha256:[a-f0-9]{64})?$"},
                "pullPolicy": ref("pullPolicy"),
            }
        ),
        "imagePullSecrets": {"type": "array", "items": closed({"name": NONEMPTY}, ["name"])},
        "serviceAccount": closed({"create": B, "name": NAME, "annotations": ref("stringMap")}),
        "kafka": closed(
            {
                "bootstrapServers": S,
                "securityProtocol": {
                    "type": "string",
                    "enum": ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
                },
                "sasl": closed(
                    {
                        "mechanism": {
                            "type": "string",
                            "enum": ["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"],
                        },
                        "existingSecret": NAME,
                        "passwordKey": NONEMPTY,
                        "usernameKey": S,
                        "username": S,
                    }
                ),
                "tls": closed({"caExistingSecret": NAME, "caKey": NONEMPTY}),
                "settings": settings("kafka"),
            }
        ),
        "topics": closed(
            {
                "names": closed(dict.fromkeys(TOPIC_KEYS, TOPIC), required=list(TOPIC_KEYS)),
                "partitions": integer(1),
                "replicationFactor": integer(1),
                "retentionMs": integer(-1),
                "retentionMsOverrides": closed(dict.fromkeys(RETENTION_KEYS, integer(-1))),
                "config": {
                    "type": "object",
                    "propertyNames": {"pattern": r"^[a-z][a-z0-9.]*$"},
                    "additionalProperties": {"type": ["string", "number", "boolean"]},
                },
                "provisioning": closed(
                    {
                        "enabled": B,
                        "image": ref("image"),
                        "backoffLimit": integer(0),
                        "activeDeadlineSeconds": integer(1),
                        "resources": ref("resources"),
                    }
                ),
            }
        ),
        "redis": closed(
            {
                "url": {"type": "string", "pattern": r"^(rediss?://.+)?$"},
                "existingSecret": NAME,
                "passwordKey": NONEMPTY,
                "acl": closed({"enabled": B, "existingSecret": NAME}),
                "tls": closed({"caExistingSecret": NAME, "caKey": NONEMPTY}),
                "settings": settings("redis"),
                "bundled": closed(
                    {
                        "enabled": B,
                        "image": ref("image"),
                        "maxmemory": {"type": "string", "pattern": r"^[0-9]+[kmgKMG]?[bB]?$"},
                        "resources": ref("resources"),
                    }
                ),
            }
        ),
        "claimCheck": closed({"settings": settings("claimCheck")}),
        "tracing": closed(
            {
                "otlpEndpoint": {"type": "string", "pattern": r"^(https?://.+)?$"},
                "protocol": {"type": "string", "enum": ["grpc", "http/protobuf"]},
                "sampler": {
                    "type": "string",
                    "enum": [
                        "always_on",
                        "always_off",
                        "traceidratio",
                        "parentbased_always_on",
                        "parentbased_always_off",
                        "parentbased_traceidratio",
                    ],
                },
                "samplerArg": {"type": "string", "pattern": r"^(0(\.[0-9]+)?|1(\.0+)?)$"},
                "resourceAttributes": {
                    "type": "object",
                    "additionalProperties": {"type": ["string", "number", "boolean"]},
                },
            }
        ),
        "jaeger": closed(
            {
                "bundled": closed(
                    {
                        "enabled": B,
                        "image": ref("image"),
                        "maxTraces": integer(1),
                        "resources": ref("resources"),
                    }
                )
            }
        ),
        "triton": closed(
            {
                "enabled": B,
                "externalUrl": S,
                "modelName": {"type": "string", "minLength": 1, "pattern": r"^[^/\\.][^/\\]*$"},
                "image": ref("image"),
                "replicaCount": integer(0),
                "strategy": ref("k8sObject"),
                "modelRepository": closed(
                    {
                        "url": {"type": "string", "pattern": r"^((s3|gs|as)://.+)?$"},
                        "credentialsSecret": NAME,
                        "gcsCredentialsSecret": NAME,
                        "gcsCredentialsKey": NONEMPTY,
                        "existingClaim": NAME,
                        "subPath": S,
                        "volume": ref("k8sObject"),
                    }
                ),
                "engineBuild": closed(
                    {
                        "enabled": B,
                        "onFailure": {"type": "string", "enum": ["fallback", "fail"]},
                        "trtexecPath": S,
                        "extraArgs": {
                            "type": "array",
                            "items": {"type": "string", "pattern": r"^\S+$"},
                        },
                        "timeoutSeconds": integer(1),
                        "image": S,
                        "cacheClaim": NAME,
                        "resources": ref("resources"),
                    }
                ),
                "modelCacheSizeLimit": NONEMPTY,
                "gpu": closed(
                    {
                        "enabled": B,
                        "count": integer(1),
                        "resourceName": NONEMPTY,
                        "runtimeClassName": S,
                    }
                ),
                "modelControlMode": {"type": "string", "enum": ["none", "poll"]},
                "repositoryPollSeconds": integer(1),
                "shmSize": NONEMPTY,
                "extraArgs": {"type": "array", "items": S},
                "extraEnv": ref("k8sList"),
                "resources": ref("resources"),
                "tracing": closed({"enabled": B, "url": S, "rate": integer(1)}),
                "probes": ref("probes"),
                "terminationGracePeriodSeconds": integer(0),
                "serviceAccount": closed(
                    {"create": B, "name": NAME, "annotations": ref("stringMap")}
                ),
                **pod_placement,
                "pdb": ref("pdb"),
            }
        ),
        "serviceDefaults": closed(
            {
                **pod_keys,
                "logLevel": {"type": "string", "enum": ["DEBUG", "INFO", "WARNING", "ERROR"]},
            }
        ),
        "ingest": service(
            "ingest",
            {
                "cameras": closed(
                    {
                        "items": {"type": "array", "items": ref("camera")},
                        "existingSecret": NAME,
                        "existingConfigMap": NAME,
                        "key": NONEMPTY,
                        "job": closed(
                            {
                                "backoffLimit": integer(0),
                                "activeDeadlineSeconds": integer(1),
                                "ttlSecondsAfterFinished": integer(0),
                                "resources": ref("resources"),
                            }
                        ),
                    }
                ),
            },
            keda=False,
        ),
        "preprocess": service("preprocess", {}),
        "inference": service(
            "inference",
            {
                "tiers": tiers_list,  # empty: no tiers file, the single tier
                "health": tiers["properties"]["health"],
            },
        ),
        "tracking": service("tracking", {}),
        "monitor": service("monitor", {}),
        "alert": service(
            "alert",
            {
                "rules": closed({"content": rules, "existingConfigMap": NAME, "key": NONEMPTY}),
            },
        ),
        "webhook": service(
            "webhook",
            {"existingSecret": NAME, "urlKey": NONEMPTY, "egress": ref("k8sList")},
            switch=False,
        ),
        "capture": service(
            "capture",
            {
                "strategies": closed(
                    {"content": strategies, "existingConfigMap": NAME, "key": NONEMPTY}
                ),
                "dataset": closed(
                    {
                        # Any fsspec URL with a protocol (a path is a claim's mountPath).
                        "url": {"type": "string", "pattern": r"^([a-z][a-z0-9+.-]*://.+)?$"},
                        "credentialsSecret": NAME,
                        "gcsCredentialsSecret": NAME,
                        "gcsCredentialsKey": NONEMPTY,
                        "persistentVolumeClaim": closed(
                            {
                                "enabled": B,
                                "existingClaim": NAME,
                                "storageClass": S,
                                "size": {
                                    "type": "string",
                                    "pattern": r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?)?$",
                                },
                                "accessMode": {
                                    "type": "string",
                                    "enum": ["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"],
                                },
                                "subPath": {"type": "string", "pattern": r"^([^/].*)?$"},
                            }
                        ),
                        "mountPath": {"type": "string", "pattern": r"^/.+$"},
                    }
                ),
                "egress": ref("k8sList"),
            },
        ),
        "rolloutController": closed(
            {
                "enabled": B,
                "replicaCount": integer(0),
                "resources": ref("resources"),
                "leaseDurationSeconds": integer(1),
                "policy": closed({"content": policy, "existingConfigMap": NAME, "key": NONEMPTY}),
                "serviceAccount": closed(
                    {"create": B, "name": NAME, "annotations": ref("stringMap")}
                ),
                "egress": ref("k8sList"),
                **pod_keys,
            }
        ),
        "metrics": closed(
            {
                "serviceMonitor": closed(
                    {
                        "enabled": B,
                        "interval": {"type": "string", "pattern": r"^[0-9]+(ms|s|m|h)$"},
                        "scrapeTimeout": {"type": "string", "pattern": r"^[0-9]+(ms|s|m|h)$"},
                        "labels": ref("stringMap"),
                    }
                ),
                "prometheusRule": closed({"enabled": B, "labels": ref("stringMap")}),
            }
        ),
        "networkPolicy": closed(
            {
                "enabled": B,
                "metricsFrom": ref("k8sList"),
                "egress": closed({"enabled": B, "to": ref("k8sList")}),
            }
        ),
        "tests": closed({"enabled": B}),
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Steadyeye Helm chart values",
        "description": "Generated by helm/values_schema.py; every object rejects unknown keys.",
        "type": "object",
        "additionalProperties": False,
        "properties": top,
        "definitions": dict(sorted(defs.items())),
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if SCHEMA.read_text() != text:
            print(f"{SCHEMA} is stale: run .venv/bin/python helm/values_schema.py", file=sys.stderr)
            return 1
        return 0
    SCHEMA.write_text(text)
    print(f"wrote {SCHEMA}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
