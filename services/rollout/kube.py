"""The rollout controller on Kubernetes: every Triton replica found through the Triton Service's
EndpointSlices, one controller acting at a time through a coordination.k8s.io Lease, and a
model's versions pushed to a Triton that does not share our disk (docs/design/model-rollout.md
§1, §2). The chart gives the controller exactly the RBAC used here
(helm/steadyeye/templates/rollout-controller.yaml): endpointslices get/list/watch, leases
get/create/update.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes
import tritonclient.grpc as triton
import urllib3
from google.protobuf import json_format, text_format
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from tritonclient.grpc import model_config_pb2 as mc

log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# v1 since Kubernetes 1.21; v1beta1 (1.17-1.24) is what the 1.20 test API server serves.
SLICE_API_VERSIONS = ("discovery.k8s.io/v1", "discovery.k8s.io/v1beta1")


def in_cluster_api() -> kubernetes.client.ApiClient:
    """The pod's own API access (its ServiceAccount token, the cluster CA)."""
    config = kubernetes.client.Configuration()
    kubernetes.config.load_incluster_config(client_configuration=config)
    return kubernetes.client.ApiClient(config)


class TritonEndpoints:
    """The gRPC addresses of the Triton Service's ready pods, one per replica."""

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        namespace: str,
        service: str,
        port_name: str = "grpc",
    ) -> None:
        self.api, self.namespace, self.service, self.port_name = api, namespace, service, port_name
        self._slices: Any = None  # the EndpointSlice resource, resolved on first use

    def _resource(self) -> Any:
        if self._slices is None:
            dynamic = DynamicClient(self.api)
            for api_version in SLICE_API_VERSIONS:
                try:
                    self._slices = dynamic.resources.get(
                        api_version=api_version, kind="EndpointSlice"
                    )
                    break
                except ResourceNotFoundError:
                    continue
            else:
                raise ResourceNotFoundError(
                    f"the API server serves EndpointSlice in none of {SLICE_API_VERSIONS}"
                )
        return self._slices

    def urls(self) -> list[str]:
        """Sorted "host:port" of every ready endpoint (IPv6 hosts in brackets). Only fields that
        v1 and v1beta1 share are read: endpoints[].addresses, endpoints[].conditions.ready,
        ports[].name/port. API errors propagate: no answer is not "no replicas"."""
        found = self._resource().get(
            namespace=self.namespace, label_selector=f"{SERVICE_NAME_LABEL}={self.service}"
        )
        urls: set[str] = set()
        for item in found.to_dict().get("items") or []:
            ports = [
                p.get("port")
                for p in item.get("ports") or []
                # An unnamed port has no name (or ""): it matches port_name "" only.
                if (p.get("name") or "") == self.port_name and p.get("port")
            ]
            if not ports:
                continue
            for endpoint in item.get("endpoints") or []:
                # "ready unset: interpret as ready" (the EndpointConditions API docs).
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for address in endpoint.get("addresses") or []:
                    host = f"[{address}]" if ":" in address else address
                    urls.update(f"{host}:{port}" for port in ports)
        return sorted(urls)


class LeaseLeader:
    """One controller acts at a time: whoever holds the Lease, renewed more often than
    duration_s. Optimistic concurrency (resourceVersion) decides races: a 409 means another
    controller wrote first. Expiry compares the holder's renewTime with our clock, so clocks
    must agree to well within duration_s (NTP on the nodes)."""

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        namespace: str,
        name: str,
        identity: str,
        duration_s: float = 15.0,
    ) -> None:
        self.leases = kubernetes.client.CoordinationV1Api(api)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.duration_s = max(1, math.ceil(duration_s))  # leaseDurationSeconds is an integer

    def lead(self) -> bool:
        """True when we hold the Lease now (just created, renewed or taken over)."""
        try:
            return self._lead()
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            # 409: someone else won the race; 403, 5xx, no connection: not leader right now.
            status = getattr(exc, "status", None)
            level = logging.DEBUG if status == 409 else logging.WARNING
            log.log(level, "lease %s/%s: not leading: %s", self.namespace, self.name, _brief(exc))
            return False

    def _lead(self) -> bool:
        now = _now()
        try:
            lease = self.leases.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, acquired=now, transitions=0),
            }
            self.leases.create_namespaced_lease(self.namespace, body)  # 409 if one came first
            log.info("lease %s/%s: created, %s leads", self.namespace, self.name, self.identity)
            return True
        spec = lease.spec
        mine = spec.holder_identity == self.identity
        if not mine and not self._expired(spec, now):
            return False
        transitions = (spec.lease_transitions or 0) + (0 if mine else 1)
        acquired = _parse(spec.acquire_time) if mine else now
        self._replace(lease, self._spec(now, acquired=acquired, transitions=transitions))
        if not mine:
            log.info(
                "lease %s/%s: taken over from %r by %s",
                self.namespace,
                self.name,
                spec.holder_identity,
                self.identity,
            )
        return True

    def _replace(self, lease: Any, spec: dict[str, Any]) -> None:
        """Update the Lease we read: 409 if anyone wrote it since (its resourceVersion)."""
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": lease.metadata.resource_version,
            },
            "spec": spec,
        }
        self.leases.replace_namespaced_lease(self.name, self.namespace, body)

    def _expired(self, spec: Any, now: datetime) -> bool:
        if not spec.holder_identity or spec.renew_time is None:
            return True  # released, or never held
        duration = spec.lease_duration_seconds or self.duration_s
        return _parse(spec.renew_time) + timedelta(seconds=duration) < now

    def _spec(self, now: datetime, acquired: datetime | None, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.duration_s,
            "acquireTime": _micro_time(acquired or now),
            "renewTime": _micro_time(now),
            "leaseTransitions": transitions,
        }

    def release(self) -> None:
        """Best effort: clear the holder so another controller takes over at once, not after
        duration_s. Only our own Lease is touched, and a lost race is fine."""
        try:
            lease = self.leases.read_namespaced_lease(self.name, self.namespace)
            if lease.spec.holder_identity != self.identity:
                return
            # What client-go's leader election writes on release: no holder, 1 s.
            released = {
                "holderIdentity": None,
                "leaseDurationSeconds": 1,
                "acquireTime": None,
                "renewTime": _micro_time(_now()),
                "leaseTransitions": lease.spec.lease_transitions or 0,
            }
            self._replace(lease, released)
            log.info("lease %s/%s: released by %s", self.namespace, self.name, self.identity)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, _brief(exc))


def push_versions(
    client: triton.InferenceServerClient,
    model_dir: Path,
    versions: list[int],
    timeout_s: float,
) -> None:
    """Make a Triton that does not share our disk serve exactly these versions of the model in
    model_dir: one load_model with the config (version_policy specific = versions) and the files
    of every listed version folder, sent over gRPC.

    Every kept version's files must be sent, not only the new one's: with `files` Triton loads
    the model from a fresh directory holding only what was sent (the repository's folder is
    ignored), so a listed version whose files are missing fails to load. A version already
    loaded with the same files keeps its instances: no reload, in-flight requests are not
    disturbed (measured in tests/test_kube_rollout.py). A version left out of the list is
    unloaded once its in-flight requests finish.
    Raises InferenceServerException when Triton refuses (a listed version missing, bad files).
    """
    wanted = sorted(set(versions))
    if not wanted:
        raise ValueError("push_versions needs at least one version (unload_model removes all)")
    config = text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())
    config.version_policy.specific.versions[:] = wanted
    files: dict[str, bytes] = {}
    for version in wanted:
        folder = model_dir / str(version)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such version folder")
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[f"file:{version}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()
    started = time.monotonic()
    client.load_model(
        config.name or model_dir.name,
        config=json_format.MessageToJson(config, preserving_proto_field_name=True),
        files=files,
        client_timeout=timeout_s,
    )
    log.info(
        "pushed %s versions %s (%d files, %.1f MB) in %.1fs",
        config.name or model_dir.name,
        wanted,
        len(files),
        sum(map(len, files.values())) / 1e6,
        time.monotonic() - started,
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _micro_time(moment: datetime) -> str:
    # MicroTime is RFC 3339 with exactly six fractional digits; isoformat() drops them when
    # the microseconds are 0, which the API server then rejects.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: datetime | str | None) -> datetime:
    if value is None:
        return _now()
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _brief(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
