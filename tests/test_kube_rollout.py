"""The rollout controller's Kubernetes side (services/rollout/kube.py) against a real API server:
kube-apiserver v1.20.2 and etcd (tests/kube_apiserver.py; scripts/install-kube-apiserver.sh
builds them once per machine), with RBAC enforced. The controller acts with the token of the
chart's own ServiceAccount, bound by the chart's own Role and RoleBinding as `helm template`
renders them: what works here is exactly what the chart grants.

No kubelet or controller-manager runs, so the tests create the EndpointSlices themselves; the
"pods" behind them are real tritonservers on 127.0.0.1, each with its own repository copy.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import numpy as np
import psutil
import pytest
import tritonclient.grpc as grpcclient
import yaml
from google.protobuf import text_format
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from tritonclient.grpc import model_config_pb2 as mc

from services.rollout.kube import LeaseLeader, TritonEndpoints, push_versions
from steadyeye.modelimport import import_model
from steadyeye.validate.server import EmbeddedTriton
from tests.conftest import shared_file
from tests.kube_apiserver import KubeApiServer
from tests.test_helm import ci_file, ensure_tools, run_helm, template_args

NAMESPACE = "vision"  # tests/test_helm.py renders the chart into this namespace
MODEL = "yolox_nano"
SLICES = "discovery.k8s.io/v1beta1"  # what 1.20 serves; TritonEndpoints prefers v1

Obj = dict[str, Any]


# -- the API server, the chart's RBAC, the controller's client ---------------------------------


@pytest.fixture(scope="module")
def chart() -> dict[str, Obj]:
    """The chart's rollout-controller objects and env, as `helm template` renders them."""
    result = run_helm(ensure_tools(), *template_args(ci_file("minimal"), ()))
    assert result.returncode == 0, result.stderr
    objects = [d for d in yaml.safe_load_all(result.stdout) if d]
    mine = {
        o["kind"]: o
        for o in objects
        if o["metadata"]["labels"].get("app.kubernetes.io/component") == "rollout"
        and o["kind"] in ("ServiceAccount", "Role", "RoleBinding", "Deployment")
    }
    (container,) = mine["Deployment"]["spec"]["template"]["spec"]["containers"]
    mine["env"] = {e["name"]: e.get("value") for e in container["env"]}
    return mine


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    with KubeApiServer(tmp_path_factory.mktemp("kube")) as server:
        yield server


@pytest.fixture(scope="module")
def admin(kube: KubeApiServer) -> kubernetes.client.ApiClient:
    api = kube.admin()
    kubernetes.client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
    return api


@pytest.fixture(scope="module")
def controller(
    kube: KubeApiServer, admin: kubernetes.client.ApiClient, chart: dict[str, Obj]
) -> kubernetes.client.ApiClient:
    """The controller's API access as in its pod: the chart's ServiceAccount, Role and
    RoleBinding applied unchanged, and a token of that ServiceAccount (TokenRequest, what the
    kubelet mounts)."""
    core, rbac = kubernetes.client.CoreV1Api(admin), kubernetes.client.RbacAuthorizationV1Api(admin)
    core.create_namespaced_service_account(NAMESPACE, chart["ServiceAccount"])
    rbac.create_namespaced_role(NAMESPACE, chart["Role"])
    rbac.create_namespaced_role_binding(NAMESPACE, chart["RoleBinding"])
    name = chart["ServiceAccount"]["metadata"]["name"]
    token = core.create_namespaced_service_account_token(
        name, NAMESPACE, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    return kube.client(token)


def slice_body(
    name: str, service: str, ports: list[Obj], endpoints: list[Obj], family: str = "IPv4"
):
    return {
        "apiVersion": SLICES,
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": family,
        "ports": ports,
        "endpoints": endpoints,
    }


@pytest.fixture
def slices(admin: kubernetes.client.ApiClient) -> Iterator[Any]:
    resource = DynamicClient(admin).resources.get(api_version=SLICES, kind="EndpointSlice")
    yield resource
    resource.delete(namespace=NAMESPACE, label_selector="kubernetes.io/service-name")


# -- EndpointSlices ------------------------------------------------------------------------------


def test_endpoints_are_the_ready_addresses_of_the_services_slices(
    controller: kubernetes.client.ApiClient, chart: dict[str, Obj], slices: Any
) -> None:
    env = chart["env"]
    service, port_name = (
        env["STEADYEYE_ROLLOUT_TRITON_SERVICE"],
        env["STEADYEYE_ROLLOUT_TRITON_PORT_NAME"],
    )
    assert (service, port_name) == ("steadyeye-triton", "grpc")  # the chart's Triton Service
    ports = [{"name": "http", "port": 8000, "protocol": "TCP"},
             {"name": "grpc", "port": 8001, "protocol": "TCP"}]  # fmt: skip
    for body in (
        slice_body("triton-a", service, ports, [
            {"addresses": ["10.1.0.1"], "conditions": {"ready": True}},
            {"addresses": ["10.1.0.2"], "conditions": {"ready": False}},  # starting: left out
            {"addresses": ["10.1.0.3"]},  # ready unset counts as ready (API docs)
        ]),
        slice_body("triton-b", service, ports, [
            {"addresses": ["fd00::5"], "conditions": {"ready": True}},
        ], family="IPv6"),
        # Another Service's slice, and one without the gRPC port: neither counts.
        slice_body("redis-a", "steadyeye-redis", [{"name": "grpc", "port": 6379}],
                   [{"addresses": ["10.1.0.9"]}]),
        slice_body("triton-http", service, [{"name": "http", "port": 8000}],
                   [{"addresses": ["10.1.0.7"]}]),
    ):  # fmt: skip
        slices.create(body=body, namespace=NAMESPACE)

    endpoints = TritonEndpoints(controller, NAMESPACE, service, port_name)
    assert endpoints.urls() == ["10.1.0.1:8001", "10.1.0.3:8001", "[fd00::5]:8001"]
    # This 1.20 server has no discovery.k8s.io/v1: the v1beta1 fallback was taken.
    assert endpoints._resource().group_version == SLICES
    assert TritonEndpoints(controller, NAMESPACE, "nothing-here").urls() == []


# -- the Lease -----------------------------------------------------------------------------------


def test_one_controller_leads_and_another_takes_over_when_it_stops(
    controller: kubernetes.client.ApiClient, chart: dict[str, Obj]
) -> None:
    name = chart["env"]["STEADYEYE_ROLLOUT_LEASE_NAME"]
    assert chart["env"]["STEADYEYE_ROLLOUT_LEASE_DURATION_S"] == "15"
    a = LeaseLeader(controller, NAMESPACE, name, "pod-a", duration_s=2)
    b = LeaseLeader(controller, NAMESPACE, name, "pod-b", duration_s=2)
    assert a.lead() and not b.lead()  # a created it
    time.sleep(1.2)
    assert a.lead() and not b.lead()  # a renews before it expires
    time.sleep(1.2)
    assert not b.lead(), "renewed 1.2 s ago: not expired"
    time.sleep(1.5)  # a stopped renewing: expired after 2 s
    assert b.lead() and not a.lead()

    # Both see it expired at once: exactly one wins (the other's update gets 409 Conflict).
    time.sleep(2.5)
    results: dict[str, bool] = {}
    barrier = threading.Barrier(2)

    def contend(leader: LeaseLeader, key: str) -> None:
        barrier.wait()
        results[key] = leader.lead()

    threads = [threading.Thread(target=contend, args=(x, k)) for x, k in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [False, True], results
    winner, loser = (a, b) if results["a"] else (b, a)

    # Releasing hands over at once, without waiting for the duration.
    winner.release()
    assert loser.lead() and not winner.lead()
    lease = kubernetes.client.CoordinationV1Api(controller).read_namespaced_lease(name, NAMESPACE)
    assert lease.spec.holder_identity == loser.identity
    assert lease.spec.lease_transitions >= 2


def test_the_charts_role_allows_exactly_what_the_controller_does(
    controller: kubernetes.client.ApiClient,
    admin: kubernetes.client.ApiClient,
    chart: dict[str, Obj],
) -> None:
    """Allowed: endpointslices get/list/watch, create a Lease, get/update its own Lease (the
    tests above). Everything else is 403, enforced by the API server."""
    name = chart["env"]["STEADYEYE_ROLLOUT_LEASE_NAME"]
    leases = kubernetes.client.CoordinationV1Api(controller)
    LeaseLeader(controller, NAMESPACE, name, "pod-c").lead()  # exists, whoever holds it
    kubernetes.client.CoordinationV1Api(admin).create_namespaced_lease(
        NAMESPACE, {"metadata": {"name": "someone-elses"}, "spec": {"holderIdentity": "x"}}
    )
    forbidden = {
        "list pods": lambda: kubernetes.client.CoreV1Api(controller).list_namespaced_pod(NAMESPACE),
        "read secrets": lambda: kubernetes.client.CoreV1Api(controller).list_namespaced_secret(
            NAMESPACE
        ),
        "delete its lease": lambda: leases.delete_namespaced_lease(name, NAMESPACE),
        "list leases": lambda: leases.list_namespaced_lease(NAMESPACE),
        "read another lease": lambda: leases.read_namespaced_lease("someone-elses", NAMESPACE),
        "take another lease": lambda: LeaseLeader(
            controller, NAMESPACE, "someone-elses", "pod-c"
        )._lead(),
        "endpointslices elsewhere": lambda: TritonEndpoints(
            controller, "default", "steadyeye-triton"
        ).urls(),
    }
    for what, call in forbidden.items():
        with pytest.raises(ApiException) as caught:
            call()
        assert caught.value.status == 403, what
    # A refusal is "not leader", never an exception out of lead().
    assert LeaseLeader(controller, NAMESPACE, "someone-elses", "pod-c").lead() is False


# -- pushing versions to every Triton replica ----------------------------------------------------


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository the controller pushes from: version 1 (imported) and version 2 (a copy),
    config.pbtxt listing [1] as `model import` + the stack leave it."""
    root = tmp_path_factory.mktemp("master")
    import_model(
        shared_file("models", "yolox_nano.onnx"), "yolox", root, MODEL, target="python", instances=1
    )
    model_dir = root / MODEL
    shutil.copytree(model_dir / "1", model_dir / "2")
    config = text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())
    config.version_policy.specific.versions[:] = [1]
    (model_dir / "config.pbtxt").write_text(text_format.MessageToString(config))
    return model_dir


@pytest.fixture(scope="module")
def tritons(master: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Any]]:
    """Two Triton "pods": each its own copy of version 1 only (as the chart's initContainer
    copies the source volume), explicit model control, the model loaded from disk."""
    started: list[EmbeddedTriton] = []
    try:
        for pod in ("pod-a", "pod-b"):
            work = tmp_path_factory.mktemp(pod)
            (work / "repository" / MODEL).mkdir(parents=True)
            shutil.copy(master / "config.pbtxt", work / "repository" / MODEL)
            shutil.copytree(master / "1", work / "repository" / MODEL / "1")
            triton = EmbeddedTriton(work, work / "repository")
            started.append(triton)
            triton.start().client.load_model(MODEL, client_timeout=120)
        yield started
    finally:
        for triton in started:
            triton.stop()


def versions(client: grpcclient.InferenceServerClient) -> dict[str, str]:
    index = client.get_model_repository_index(as_json=True).get("models", [])
    return {m["version"]: m.get("state", "") for m in index if m["name"] == MODEL}


def stubs(triton: EmbeddedTriton) -> dict[int, str]:
    """The Python-backend stub processes (one per loaded version here): pid -> model.py path."""
    assert triton.process is not None and triton.process.pid is not None
    found = {}
    for proc in psutil.Process(triton.process.pid).children(recursive=True):
        try:
            argv = proc.cmdline()
        except psutil.Error:
            continue
        if argv and argv[0].endswith("triton_python_backend_stub"):
            found[proc.pid] = argv[1]
    return found


def test_push_versions_to_every_replica_found_through_endpointslices(
    controller: kubernetes.client.ApiClient,
    chart: dict[str, Obj],
    slices: Any,
    master: Path,
    tritons: list[EmbeddedTriton],
) -> None:
    service = chart["env"]["STEADYEYE_ROLLOUT_TRITON_SERVICE"]
    for n, triton in enumerate(tritons):  # a slice per pod: each has its own port here
        port = triton.ports["grpc"]
        slices.create(
            body=slice_body(f"triton-{n}", service, [{"name": "grpc", "port": port}],
                            [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]),
            namespace=NAMESPACE,
        )  # fmt: skip
    urls = TritonEndpoints(controller, NAMESPACE, service).urls()
    assert urls == sorted(f"127.0.0.1:{t.ports['grpc']}" for t in tritons)
    clients = [grpcclient.InferenceServerClient(url) for url in urls]

    # Version 1 under load on every replica while version 2 is pushed beside it.
    stop, answered, errors = threading.Event(), [0], []

    def traffic(url: str) -> None:
        client = grpcclient.InferenceServerClient(url)
        frame = grpcclient.InferInput("images", [1, 416, 416, 3], "UINT8")
        frame.set_data_from_numpy(np.zeros((1, 416, 416, 3), np.uint8))
        while not stop.is_set():
            try:
                client.infer(MODEL, [frame], model_version="1", client_timeout=30)
                answered[0] += 1
            except Exception as exc:  # any failure of an in-flight version-1 request counts
                errors.append(str(exc))

    load = [threading.Thread(target=traffic, args=(url,)) for url in urls]
    for t in load:
        t.start()
    try:
        before = [stubs(t) for t in tritons]
        for client in clients:
            push_versions(client, master, [1, 2], timeout_s=120)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in load:
            t.join()
    assert not errors, errors[:3]
    assert answered[0] > 0
    for client, triton, old in zip(clients, tritons, before, strict=True):
        assert versions(client) == {"1": "READY", "2": "READY"}
        now = stubs(triton)
        # Version 1's instance was left alone (same process, still its disk copy); version
        # 2 runs from the files sent over gRPC.
        assert set(old) <= set(now), (old, now)
        assert len(now) == 2

    # Version 1 goes: its instances end once their in-flight requests finish.
    for client in clients:
        push_versions(client, master, [2], timeout_s=120)
    deadline = time.monotonic() + 30
    while any(versions(c).get("1") == "READY" for c in clients) and time.monotonic() < deadline:
        time.sleep(0.2)
    frame = grpcclient.InferInput("images", [1, 416, 416, 3], "UINT8")
    frame.set_data_from_numpy(np.zeros((1, 416, 416, 3), np.uint8))
    for client in clients:
        assert versions(client)["2"] == "READY" and versions(client)["1"] != "READY"
        assert client.infer(MODEL, [frame], model_version="2").get_response().model_version == "2"
        client.close()


def test_push_versions_refuses_an_empty_list_and_a_missing_version(
    master: Path, tritons: list[EmbeddedTriton]
) -> None:
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{tritons[0].ports['grpc']}")
    with pytest.raises(ValueError, match="at least one"):
        push_versions(client, master, [], timeout_s=10)  # unload_model's job, not this one's
    with pytest.raises(FileNotFoundError):
        push_versions(client, master, [2, 7], timeout_s=10)
    client.close()
