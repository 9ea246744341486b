"""A real Kubernetes API server for tests: etcd and kube-apiserver v1.20.2 built from Debian's
source by scripts/install-kube-apiserver.sh (docs/design/model-rollout.md §1), started on free
127.0.0.1 ports in a temporary folder. Authentication is a static token file with two users: an
admin (system:masters) and `rollout-controller`, who has nothing until a test binds it a Role;
authorization is RBAC, really enforced. There is no controller-manager and no kubelet: nothing
creates EndpointSlices or runs pods, tests create the objects they need.

    with KubeApiServer(tmp_path) as kube:
        admin = kube.admin()            # kubernetes.client.ApiClient
        controller = kube.controller()  # the `rollout-controller` user's
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType

import kubernetes
import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL_SCRIPT = "scripts/install-kube-apiserver.sh"
ADMIN_TOKEN = "steadyeye-test-admin-token"
CONTROLLER_TOKEN = "steadyeye-test-controller-token"
CONTROLLER_USER = "rollout-controller"


def binaries() -> tuple[Path, Path]:
    """kube-apiserver and etcd: $STEADYEYE_KUBE_BIN_DIR, else the install script's cache. A
    missing binary fails the test (CI runs the script first): it is never a skip."""
    if os.environ.get("STEADYEYE_KUBE_BIN_DIR"):
        folder = Path(os.environ["STEADYEYE_KUBE_BIN_DIR"])
    else:
        cache = os.environ.get("STEADYEYE_KUBE_CACHE") or Path.home() / ".cache/steadyeye/kube"
        folder = Path(cache) / "current"
    apiserver, etcd = folder / "kube-apiserver", folder / "etcd"
    for path in (apiserver, etcd):
        if not os.access(path, os.X_OK):
            pytest.fail(
                f"{path} not found: run {INSTALL_SCRIPT} once (`make test` does; a cold build "
                f"takes ~3-4 min), or point STEADYEYE_KUBE_BIN_DIR at a folder with "
                f"kube-apiserver and etcd"
            )
    return apiserver, etcd


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class KubeApiServer:
    def __init__(self, workdir: Path, startup_timeout_s: float = 60.0) -> None:
        self.workdir, self.startup_timeout_s = workdir, startup_timeout_s
        self.port = free_port()
        self.etcd: subprocess.Popen[bytes] | None = None
        self.apiserver: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        return self.workdir / "certs" / "apiserver.crt"

    @property
    def host(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def __enter__(self) -> KubeApiServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        apiserver, etcd = binaries()
        d = self.workdir
        d.mkdir(parents=True, exist_ok=True)
        client_port, peer_port = free_port(), free_port()
        peer = f"http://127.0.0.1:{peer_port}"
        self.etcd = self._spawn(
            "etcd",
            [
                str(etcd),
                "--data-dir", str(d / "etcd"),
                "--listen-client-urls", f"http://127.0.0.1:{client_port}",
                "--advertise-client-urls", f"http://127.0.0.1:{client_port}",
                "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"default={peer}",
                "--log-level", "warn",
            ],
        )  # fmt: skip
        # The ServiceAccount token signer the server requires (tokens are not used here).
        subprocess.run(
            ["openssl", "genrsa", "-out", str(d / "sa.key"), "2048"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["openssl", "rsa", "-in", str(d / "sa.key"), "-pubout", "-out", str(d / "sa.pub")],
            check=True,
            capture_output=True,
        )
        (d / "tokens.csv").write_text(
            f'{ADMIN_TOKEN},admin,1,"system:masters"\n{CONTROLLER_TOKEN},{CONTROLLER_USER},2\n'
        )
        self.apiserver = self._spawn(
            "kube-apiserver",
            [
                str(apiserver),
                "--etcd-servers", f"http://127.0.0.1:{client_port}",
                "--bind-address", "127.0.0.1",
                "--advertise-address", "127.0.0.1",
                "--secure-port", str(self.port),
                "--cert-dir", str(d / "certs"),
                "--token-auth-file", str(d / "tokens.csv"),
                "--authorization-mode", "RBAC",
                "--service-account-issuer", "https://kubernetes.default.svc",
                "--service-account-key-file", str(d / "sa.pub"),
                "--service-account-signing-key-file", str(d / "sa.key"),
                "--service-cluster-ip-range", "10.0.0.0/24",
                # No controller-manager creates ServiceAccount tokens: do not wait for them.
                "--disable-admission-plugins", "ServiceAccount",
            ],
        )  # fmt: skip
        self._wait_ready()

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        # Its own process group, so stop() reaches nothing else.
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _wait_ready(self) -> None:
        # The server writes its self-signed certificate (and the CA that signed it) to
        # cert-dir at start; it names 127.0.0.1, the advertise address.
        context: ssl.SSLContext | None = None
        request = urllib.request.Request(
            f"{self.host}/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            for name, proc in (("etcd", self.etcd), ("kube-apiserver", self.apiserver)):
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}):\n{self.tail(name)}")
            if context is None and self.ca_file.is_file():
                try:
                    context = ssl.create_default_context(cafile=str(self.ca_file))
                except (ssl.SSLError, OSError):  # still being written
                    context = None
            if context is None:
                time.sleep(0.1)
                continue
            try:
                with urllib.request.urlopen(request, timeout=2, context=context) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"kube-apiserver not ready after {self.startup_timeout_s:.0f}s:\n"
            f"{self.tail('kube-apiserver')}"
        )

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    def stop(self) -> None:
        # The API server first (it holds etcd connections), each SIGTERM then SIGKILL.
        for proc in (self.apiserver, self.etcd):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def client(self, token: str) -> kubernetes.client.ApiClient:
        config = kubernetes.client.Configuration()
        config.host = self.host
        config.ssl_ca_cert = str(self.ca_file)
        config.api_key = {"authorization": token}
        config.api_key_prefix = {"authorization": "Bearer"}
        return kubernetes.client.ApiClient(config)

    def admin(self) -> kubernetes.client.ApiClient:
        return self.client(ADMIN_TOKEN)

    def controller(self) -> kubernetes.client.ApiClient:
        return self.client(CONTROLLER_TOKEN)
