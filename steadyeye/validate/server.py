"""Serving the reference and the candidate side by side in Triton.

Two ways:
- the configured Triton (STEADYEYE_INFERENCE_TRITON_URL) already serves the reference; the
  candidate is sent to it over gRPC (`load_model` with the files: no shared volume) under a
  name of its own, never as a version of the served model (a newly loaded version would take
  every unversioned request), and unloaded afterwards. Needs Triton's explicit model control.
- the embedded Triton: this module starts `tritonserver` (the wheel's, as `steadyeye up` does,
  plus --model-control-mode explicit) on a repository of its own with the two models.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import tritonclient.grpc as grpcclient
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.utils import InferenceServerException

from steadyeye.embedded.binaries import Triton
from steadyeye.embedded.process import ManagedProcess

log = logging.getLogger(__name__)
STUB = "triton_python_backend_stub"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", socket.gethostname()}


class ServingError(Exception):
    """Triton could not be started or reached, or refused a model (exit code 2 for the
    reference, a failed check for the candidate)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_config(model_dir: Path) -> mc.ModelConfig:
    return text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())


def as_python_backend(model_dir: Path, version: str | None = None, instances: int = 1) -> None:
    """Make an imported model (any target) servable by the embedded Triton, in place: the fused
    model.onnx is the same for every target; the Python backend runs it with onnxruntime."""
    from steadyeye.modelimport.repository import PYTHON_MODEL

    config = read_config(model_dir)
    config.backend, config.platform = "python", ""
    del config.instance_group[:]
    config.instance_group.add(kind=mc.ModelInstanceGroup.KIND_CPU, count=instances)
    config.parameters["intra_op_threads"].string_value = "1"
    versions = [version] if version else [p.name for p in model_dir.iterdir() if p.name.isdigit()]
    for v in versions:
        if not (model_dir / v / "model.onnx").is_file():
            raise ServingError(f"{model_dir / v}: no model.onnx (not written by `model import`?)")
        shutil.copyfile(PYTHON_MODEL, model_dir / v / "model.py")
    if version:
        config.version_policy.specific.versions[:] = [int(version)]
    (model_dir / "config.pbtxt").write_text(text_format.MessageToString(config))


@dataclass
class Server:
    """A Triton gRPC endpoint, with the process id when it runs on this host."""

    url: str
    kind: str  # "embedded" or "configured"
    pid: int | None = None
    client: grpcclient.InferenceServerClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = grpcclient.InferenceServerClient(self.url)

    def live(self) -> bool:
        try:
            return bool(self.client.is_server_live(client_timeout=3))
        except InferenceServerException:
            return False

    def config(self, name: str, version: str = "") -> dict:
        try:
            return self.client.get_model_config(name, version, as_json=True, client_timeout=10)[
                "config"
            ]
        except InferenceServerException as exc:
            raise ServingError(f"model {name!r} in the Triton at {self.url}: {exc}") from None

    def load(self, name: str, model_dir: Path | None = None, timeout_s: float = 180) -> float:
        """Load `name` (from the server's repository, or this directory's files sent over
        gRPC); return the seconds it took."""
        started = time.monotonic()
        kwargs: dict = {}
        if model_dir is not None:
            config = read_config(model_dir)
            config.name = name
            kwargs["config"] = json_format.MessageToJson(config, preserving_proto_field_name=True)
            kwargs["files"] = {
                f"file:{path.relative_to(model_dir)}": path.read_bytes()
                for path in sorted(model_dir.rglob("*"))
                if path.is_file() and path.parent != model_dir
            }
        try:
            self.client.load_model(name, client_timeout=timeout_s, **kwargs)
        except InferenceServerException as exc:
            raise ServingError(f"the Triton at {self.url} did not load {name!r}: {exc}") from None
        return time.monotonic() - started

    def unload(self, name: str) -> None:
        try:
            self.client.unload_model(name, client_timeout=30)
        except InferenceServerException as exc:
            log.warning("could not unload %s from %s: %s", name, self.url, exc)

    def statistics(self, name: str, version: str = "") -> dict[str, float]:
        """Server-side cumulative counts and times (ns) for the model."""
        try:
            stats = self.client.get_inference_statistics(name, version, as_json=True)
        except InferenceServerException:
            return {}
        totals: dict[str, float] = {}
        for model in stats.get("model_stats", []):
            inference = model.get("inference_stats", {})
            for key in ("success", "queue", "compute_input", "compute_infer", "compute_output"):
                entry = inference.get(key, {})
                totals[f"{key}_count"] = totals.get(f"{key}_count", 0) + int(entry.get("count", 0))
                totals[f"{key}_ns"] = totals.get(f"{key}_ns", 0) + int(entry.get("ns", 0))
        return totals

    def close(self) -> None:
        self.client.close()


def configured_server(url: str) -> Server | None:
    """The configured Triton when it answers, else None."""
    server = Server(url, "configured")
    if not server.live():
        server.close()
        return None
    server.pid = local_pid(url)
    return server


def local_pid(url: str) -> int | None:
    """The process listening on the URL's port, when it runs on this host and is visible."""
    host, _, port = url.rpartition(":")
    if host.strip("[]") not in LOCAL_HOSTS or not port.isdigit():
        return None
    try:
        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == "LISTEN" and conn.laddr and conn.laddr.port == int(port):
                return conn.pid
    except Exception:  # psutil missing, or not allowed to see other users' sockets
        return None
    return None


class EmbeddedTriton:
    """`tritonserver` from the wheel in explicit model-control mode: nothing is loaded at start;
    models are loaded (and measured) one at a time."""

    def __init__(self, workdir: Path, repository: Path, startup_timeout_s: float = 120) -> None:
        self.workdir, self.repository = workdir, repository
        self.startup_timeout_s = startup_timeout_s
        self.ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
        self.process: ManagedProcess | None = None
        self.server: Server | None = None

    def start(self) -> Server:
        triton = Triton.find()
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        argv = [
            str(triton.server),
            "--model-repository",
            str(self.repository),
            "--model-control-mode",
            "explicit",
            "--backend-directory",
            str(triton.backend_dir(self.workdir)),
            "--http-port",
            str(self.ports["http"]),
            "--grpc-port",
            str(self.ports["grpc"]),
            "--metrics-port",
            str(self.ports["metrics"]),
            "--allow-cpu-metrics",
            "false",
            "--backend-config",
            "python,shm-default-byte-size=16777216",
            "--log-verbose",
            "0",
        ]
        self.process = ManagedProcess(
            "triton", argv, {**os.environ, **triton.env()}, logs, restart=False, grace_s=10
        )
        self.process.start()
        url = f"http://127.0.0.1:{self.ports['http']}/v2/health/live"
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if not self.process.running():
                raise ServingError(f"tritonserver exited during start-up:\n{self.process.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise ServingError(f"tritonserver not live after {self.startup_timeout_s:.0f}s")
        self.server = Server(f"127.0.0.1:{self.ports['grpc']}", "embedded", self.process.pid)
        return self.server

    def tail(self) -> str:
        return self.process.tail() if self.process else ""

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.process is not None:
            self.process.stop()


def memory(pid: int | None, models: list[str]) -> dict:
    """Memory of a local Triton, in MB: its process tree's RSS, and per model the Python-backend
    stub processes serving it (one per instance; its arguments name the instance): RSS, PSS
    (shared pages split between the processes mapping them) and USS (private memory).
    Empty when the server is not on this host."""
    if pid is None:
        return {}
    try:
        import psutil

        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except Exception:  # psutil missing, or the process is gone
        return {}
    mb = 1 / (1024 * 1024)
    result: dict = {"tree_rss_mb": 0.0, "models": {m: None for m in models}}
    for proc in tree:
        try:
            info = proc.memory_full_info()
            argv = proc.cmdline()
        except Exception:  # exited meanwhile, or not ours to read
            continue
        result["tree_rss_mb"] += info.rss * mb
        if not argv or not argv[0].endswith(STUB):
            continue
        for model in models:
            # The stub's arguments name its instance: MODEL_<group>_<index>.
            if any(re.fullmatch(rf"{re.escape(model)}_\d+_\d+", arg) for arg in argv[1:]):
                entry = result["models"][model] or {
                    "rss_mb": 0.0,
                    "pss_mb": 0.0,
                    "uss_mb": 0.0,
                    "processes": 0,
                }
                entry["rss_mb"] += info.rss * mb
                entry["pss_mb"] += getattr(info, "pss", info.rss) * mb
                entry["uss_mb"] += info.uss * mb
                entry["processes"] += 1
                result["models"][model] = entry
    return result
