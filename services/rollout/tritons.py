"""The Triton servers a rollout changes, and how a version set reaches each.

- `SharedRepository`: one Triton reading the repository we write (the embedded stack, compose):
  the version list goes into config.pbtxt, and a reload makes Triton read it.
- `KubeReplicas`: every Triton pod behind the chart's Service, found through its EndpointSlices
  (services/rollout/kube.py); each pod has its own copy of the repository (made at its start
  from the volume, which is read-only here), so the versions' files go with the load request.

A restarted Triton loads what its repository lists, which need not be what the rollout state
uses now: the controller reconciles every Triton with the state (`reconcile`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from services import triton_client
from services.rollout.repository import set_versions
from services.rollout.settings import RolloutSettings


class TritonsError(Exception):
    """A Triton refused or could not be reached."""


class Tritons(Protocol):
    def load(self, model: str, model_dir: Path, versions: list[int], timeout_s: float) -> None:
        """Serve exactly these versions (each Triton; versions kept are not reloaded)."""

    def ready_versions(self, model: str) -> list[int]:
        """Versions every Triton has ready."""

    def is_ready(self, model: str, version: str) -> bool:
        """Whether any Triton has this version ready (unloading ends when none has)."""

    def reconcile(
        self, model: str, model_dir: Path, versions: list[int], timeout_s: float
    ) -> list[str]:
        """Load these versions on each Triton that serves others (one restarted since, with
        what its repository copy lists); returns the Tritons it reloaded."""


class _Clients:
    """Versions across a set of Tritons, each asked through its own gRPC client."""

    def __init__(self, urls: Callable[[], list[str]]) -> None:
        self._urls = urls
        self._clients: dict[str, triton.InferenceServerClient] = {}

    def clients(self) -> list[tuple[str, triton.InferenceServerClient]]:
        urls = self._urls()
        for gone in set(self._clients) - set(urls):
            self._clients.pop(gone).close()
        for url in urls:
            if url not in self._clients:
                self._clients[url] = triton_client.connect(url)
        return [(url, self._clients[url]) for url in urls]

    def ready_versions(self, model: str) -> list[int]:
        sets = []
        for url, client in self.clients():
            try:
                index = client.get_model_repository_index(as_json=True).get("models", [])
            except InferenceServerException as exc:
                raise TritonsError(f"Triton at {url}: {exc}") from exc
            sets.append(
                {int(m["version"]) for m in index
                 if m.get("name") == model and m.get("state") == "READY"}
            )  # fmt: skip
        return sorted(set.intersection(*sets)) if sets else []

    def is_ready(self, model: str, version: str) -> bool:
        return any(_ready(client, model, version) for _, client in self.clients())

    def reconcile(
        self, model: str, model_dir: Path, versions: list[int], timeout_s: float
    ) -> list[str]:
        reloaded = []
        for url, client in self.clients():
            try:
                ready = [int(v) for v in client.get_model_metadata(model).versions]
            except InferenceServerException:
                continue  # starting, or down: its turn comes at a later tick
            if sorted(ready) != sorted(versions):
                self._load_one(url, client, model, model_dir, versions, timeout_s)
                reloaded.append(url)
        return reloaded

    def _load_one(
        self,
        url: str,
        client: triton.InferenceServerClient,
        model: str,
        model_dir: Path,
        versions: list[int],
        timeout_s: float,
    ) -> None:
        try:
            self._send(client, model, model_dir, versions, timeout_s)
        except (InferenceServerException, OSError) as exc:
            raise TritonsError(
                f"Triton at {url} did not load {model} versions {versions}: {exc}"
            ) from exc

    def _send(
        self,
        client: triton.InferenceServerClient,
        model: str,
        model_dir: Path,
        versions: list[int],
        timeout_s: float,
    ) -> None:
        """Make this one Triton serve exactly these versions."""
        raise NotImplementedError

    def load(self, model: str, model_dir: Path, versions: list[int], timeout_s: float) -> None:
        replicas = self.clients()
        if not replicas:
            raise TritonsError(f"no ready Triton replica serves {model}: nothing to load on")
        for url, client in replicas:
            self._load_one(url, client, model, model_dir, versions, timeout_s)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _ready(client: triton.InferenceServerClient, model: str, version: str) -> bool:
    try:
        return bool(client.is_model_ready(model, version))
    except InferenceServerException:
        return False


class SharedRepository(_Clients):
    def __init__(self, url: str) -> None:
        super().__init__(lambda: [url])

    def _send(
        self,
        client: triton.InferenceServerClient,
        model: str,
        model_dir: Path,
        versions: list[int],
        timeout_s: float,
    ) -> None:
        # The list on disk is what a restarted Triton loads; loading re-reads it.
        set_versions(model_dir, versions)
        client.load_model(model, client_timeout=timeout_s)


class KubeReplicas(_Clients):
    """The repository volume is mounted read-only here (the pods copy it at start): the
    versions' files go with each load, and a pod started later is reconciled."""

    def _send(
        self,
        client: triton.InferenceServerClient,
        model: str,
        model_dir: Path,
        versions: list[int],
        timeout_s: float,
    ) -> None:
        from services.rollout.kube import push_versions

        push_versions(client, model_dir, versions, timeout_s)


def tritons_for(settings: RolloutSettings) -> Tritons:
    if not settings.kube_namespace:
        return SharedRepository(settings.triton_url)
    if "://" in str(settings.repository) or not settings.repository.is_dir():
        raise TritonsError(
            f"STEADYEYE_ROLLOUT_REPOSITORY={settings.repository}: on Kubernetes the controller "
            "sends each version's files to every Triton from the repository volume; mount it"
        )
    from services.rollout.kube import TritonEndpoints, in_cluster_api

    endpoints = TritonEndpoints(
        in_cluster_api(),
        settings.kube_namespace,
        settings.triton_service,
        settings.triton_port_name,
    )
    return KubeReplicas(endpoints.urls)
