"""`steadyeye up`: a Kafka-protocol broker, Triton, Redis and the services on one machine."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import socket
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import psutil
import redis
import yaml
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError
from pydantic import Field

from services.core import redis_acl
from services.core.claimcheck import connect
from services.core.errors import ConfigError
from services.core.settings import (
    ClaimCheckSettings,
    Group,
    RedisSettings,
    TopicSettings,
    group,
    load,
)
from services.ingest import directory
from services.ingest.cameras import load_cameras
from services.rollout import events
from services.rollout.control import Rollouts
from services.rollout.tritons import SharedRepository
from steadyeye.assets import ModelSettings, model_file
from steadyeye.embedded import prometheus as prom
from steadyeye.embedded.binaries import Triton, tansu
from steadyeye.embedded.process import ManagedProcess

log = logging.getLogger(__name__)
# Consumers, in pipeline order, then the rollout controller. ingest joins when there is a
# cameras file, alert when there is a rules file, webhook when STEADYEYE_WEBHOOK_URL is set.
PIPELINE = ("preprocess", "inference", "tracking", "monitor")
TRITON_CLIENTS = ("preprocess", "inference", "capture")


class StackSettings(Group):
    model_config = group("STACK")

    workdir: Path = Path(".steadyeye")
    startup_timeout_s: float = Field(180.0, gt=0)
    # Consumer-group timing for the embedded broker, which completes a group join only after
    # the rebalance timeout (max_poll_interval_ms): short, so services start in seconds.
    kafka_max_poll_interval_ms: int = Field(6000, ge=1000)
    # shared: use the Redis at STEADYEYE_REDIS_URL when it answers, else start one;
    # own: always start a fresh redis-server (tests: no state left from an earlier run).
    redis: Literal["shared", "own"] = "shared"
    # host:port of a Triton gRPC endpoint to use instead of starting the embedded one (NVIDIA's
    # image serving the TensorRT engine on a GPU: scripts/gpu-bench.sh).
    triton_url: str | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_broker(port: int, logs: Path) -> ManagedProcess:
    """The embedded Tansu broker on 127.0.0.1:`port`, started and accepting connections."""
    url = f"tcp://127.0.0.1:{port}"
    argv = [str(tansu()), "broker", "--listener-url", url, "--advertised-listener-url", url]
    broker = ManagedProcess("broker", argv, os.environ.copy(), logs, restart=False)
    broker.start()
    _wait("broker", lambda: bool(socket.create_connection(("127.0.0.1", port), 1)), 30, broker)
    return broker


def _wait(what: str, check: Callable[[], bool], timeout_s: float, proc: ManagedProcess | None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and not proc.running():
            raise RuntimeError(f"{what} exited during start-up:\n{proc.tail()}")
        try:
            if check():
                return
        except (OSError, redis.RedisError):
            pass
        time.sleep(0.2)
    tail = f":\n{proc.tail()}" if proc else ""
    raise RuntimeError(f"{what} not ready after {timeout_s:.0f}s{tail}")


def _importer_digest() -> str:
    import steadyeye.modelimport as package

    digest = hashlib.sha256()
    for path in sorted(Path(package.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def sweep_dead_payloads(shm: Path = Path("/dev/shm")) -> list[Path]:
    """Remove what stacks and inference services killed with SIGKILL left in /dev/shm: payload
    directories (up to a TTL of raw frames, ~1.6 GB at 10 fps) and Triton input regions, named
    steadyeye-<pid>-…, whose process is gone. Returns what was removed."""
    removed = []
    for path in shm.glob("steadyeye-*-*"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


class Stack:
    def __init__(
        self,
        cameras_file: Path | None = None,
        rules_file: Path | None = None,
        say: Callable[[str], None] = log.info,
        workdir: Path | None = None,
        fresh_redis: bool = False,
        webhook_url: str | None = None,
        monitor: bool = True,
        capture_strategies: Path | None = None,
        capture_dataset: str | None = None,
        fallback: bool = False,
        tiers_file: Path | None = None,
        ingest_replicas: int = 0,
        prometheus: bool = False,
        console: bool = False,
    ):
        """fresh_redis: start a Redis of our own even when one answers, so no tracker or
        alert state of an earlier run (same camera, same frame ids) leaks into this one.
        webhook_url: run the webhook service, delivering alerts there (default:
        STEADYEYE_WEBHOOK_URL). monitor: run the drift monitor (benchmarks leave it out to
        measure what it costs). capture_strategies: run the capture service with these
        strategies, writing its dataset to capture_dataset (default: WORKDIR/dataset).
        fallback: Triton also serves an int8 variant of the model (`fallback_model`), the
        fallback tier of a tiers file. tiers_file: inference's (default with `fallback`: the
        model, then its int8 variant, both on the embedded Triton). ingest_replicas: run the
        cameras file's cameras on this many ingest replicas sharing the cameras topic.
        prometheus: also run Prometheus (when installed) on the shipped alert rules, scraping
        every process of the stack; its port is then `prometheus_port`. console: run the
        read-only web console (services/console) on 127.0.0.1 at `service_ports["console"]`."""
        self.settings = load(StackSettings)
        self.model = load(ModelSettings)
        self.topics = load(TopicSettings)
        self.redis_settings = load(RedisSettings)
        self.redis_url = self.redis_settings.url  # never with credentials: it is printed
        # Each service's password for its own ACL user (services/core/redis_acl.py); empty
        # when the Redis in use would not let us create the users.
        self.redis_passwords: dict[str, str] = {}
        self._redis_admin_password: str | None = None  # set when we started the server
        self.cameras_file = cameras_file
        self.rules_file = rules_file
        self.webhook_url = webhook_url or os.environ.get("STEADYEYE_WEBHOOK_URL")
        self.fresh_redis = fresh_redis
        self.monitor = monitor
        self.say = say
        self.workdir = (workdir or self.settings.workdir).resolve()
        self.capture_strategies = capture_strategies
        self.capture_dataset = capture_dataset or str(self.workdir / "dataset")
        self.fallback = fallback
        self.ingest_replicas = ingest_replicas
        self.tiers_file = tiers_file
        self.logs = self.workdir / "logs"
        self.kafka_port = free_port()
        self.triton_ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
        # Every service runs on this host: payloads go through a tmpfs directory of this stack's
        # own, not through Redis (docs/performance.md), unless the environment chose a store.
        self.claim_check = load(ClaimCheckSettings)
        self.shm_dir: Path | None = None
        if "STEADYEYE_CLAIM_CHECK_STORE" not in os.environ and Path("/dev/shm").is_dir():
            self.shm_dir = Path("/dev/shm") / f"steadyeye-{os.getpid()}-{self.kafka_port}"
            self.claim_check = self.claim_check.model_copy(
                update={"store": "shm", "shm_dir": self.shm_dir}
            )
        self.processes: dict[str, ManagedProcess] = {}
        self.service_ports: dict[str, int] = {}
        self.prometheus = prometheus
        self.console = console
        self.prometheus_port: int | None = None  # set once our Prometheus is ready

    def use_camera(self, camera: dict[str, object]) -> None:
        """Run ingest (when the stack starts) with this one camera, written as a cameras file."""
        path = self.workdir / "cameras.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"cameras": [camera]}))
        self.cameras_file = path

    @property
    def fallback_model(self) -> str:
        return f"{self.model.name}_int8"

    def write_tiers(self, primary_url: str | None = None, budget_ms: float = 250) -> Path:
        """A tiers file: the model (at primary_url, default the embedded Triton), then its int8
        variant on the embedded Triton; inference reads it when it (re)starts."""
        assert self.fallback, "the stack serves no fallback model"
        tiers = [
            {"name": "primary", "triton_url": primary_url or self.triton_grpc,
             "model": self.model.name, "budget_ms": budget_ms},
            {"name": "int8", "triton_url": self.triton_grpc, "model": self.fallback_model,
             "budget_ms": 400},
        ]  # fmt: skip
        path = self.workdir / "tiers.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"tiers": tiers}, sort_keys=False))
        self.tiers_file = path
        return path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def triton_grpc(self) -> str:
        return self.settings.triton_url or f"127.0.0.1:{self.triton_ports['grpc']}"

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        sweep_dead_payloads()
        self._start_broker()
        self._ensure_redis()
        repository = self._model_repository()  # also the baseline's ONNX file in benchmarks
        if self.fallback:
            self._fallback_repository(repository)
            if self.tiers_file is None:
                self.write_tiers()
        if self.settings.triton_url:
            self.say(f"using the Triton at {self.settings.triton_url}")
        else:
            self._start_triton(repository)
        self.create_topics()
        # The pipeline first: ingest starts once every consumer has joined its group.
        consumers = (
            *(name for name in PIPELINE if self.monitor or name != "monitor"),
            *(("alert",) if self.rules_file else ()),
            *(("webhook",) if self.webhook_url else ()),
            *(("capture",) if self.capture_strategies else ()),
            "rollout",
        )
        self._start_services(consumers)
        if self.cameras_file and self.ingest_replicas:
            self.start_ingest_replicas(self.ingest_replicas, self.cameras_file)
        elif self.cameras_file:
            self._start_services(["ingest"])
        if self.console:
            self._start_services(["console"])
        if self.prometheus:
            self._start_prometheus()
        self.say(f"stack up in {time.monotonic() - started:.1f}s; logs in {self.logs}")

    def _start_services(self, keys: Iterable[str], service: str | None = None,
                        env: dict[str, str] | None = None) -> None:  # fmt: skip
        """Start them all, then wait for each to be ready (consumers join their groups at once)."""
        keys = list(keys)
        for key in keys:
            self.start_service(service or key, instance=key, env=env)
        for key in keys:
            self.wait_ready(key)

    def start_ingest_replicas(self, replicas: int, cameras_file: Path | None = None) -> list[str]:
        """Ingest replicas sharing the cameras topic (no cameras file of their own); a cameras
        file, if given, is applied to the topic first (`steadyeye cameras apply`)."""
        if cameras_file is not None:
            found = directory.apply(self.bootstrap, self.topics.cameras, load_cameras(cameras_file))
            self.say(f"cameras topic: {', '.join(found.lines()) or 'unchanged'}")
        names = [f"ingest-{k}" for k in range(replicas)]
        self._start_services(names, "ingest", {"STEADYEYE_INGEST_CAMERAS_FILE": ""})
        return names

    def _start_prometheus(self) -> None:
        """Prometheus on the shipped alert rules, scraping every service and our Triton; the
        targets follow start_service and stop_service. Without the binary the stack runs on."""
        binary = shutil.which("prometheus")
        if binary is None:
            self.say(
                "prometheus not installed (apt-get install prometheus); "
                "metrics are still on each service's /metrics"
            )
            return
        home, port = self.workdir / "prometheus", free_port()
        prom.prepare(home, self._scrape_ports())
        process = self._spawn("prometheus", prom.argv(binary, home, port), os.environ.copy())
        ready = f"http://127.0.0.1:{port}/-/ready"
        try:
            _wait("prometheus", lambda: _http_ok(ready), 60, process)
        except RuntimeError as exc:  # observability is no reason to stop the pipeline
            self.processes.pop("prometheus").stop()
            self.say(f"{exc}\nthe stack runs on without Prometheus")
            return
        self.prometheus_port = port
        self.say(f"prometheus on http://127.0.0.1:{port} (alerts: /alerts)")

    def _scrape_ports(self) -> dict[str, int]:
        ports = dict(self.service_ports)  # every service serves /metrics on its HTTP port
        if "triton" in self.processes:  # ours, not one at STEADYEYE_STACK_TRITON_URL
            ports["triton"] = self.triton_ports["metrics"]
        return ports

    def _refresh_targets(self) -> None:
        if self.prometheus_port is not None:
            prom.write_targets(self.workdir / "prometheus" / "targets.json", self._scrape_ports())

    def _start_broker(self) -> None:
        self.processes["broker"] = start_broker(self.kafka_port, self.logs)
        self.say(f"broker (Tansu) on {self.bootstrap}")

    def redis_admin(self) -> redis.Redis:
        """A client with every right, for the stack itself and tests (never for a service)."""
        if self._redis_admin_password is None:
            return connect(self.redis_settings.model_copy(update={"url": self.redis_url}))
        return redis.Redis.from_url(self.redis_url, password=self._redis_admin_password)

    def operator_env(self) -> dict[str, str]:
        """Settings for the operator's commands (`steadyeye monitor ...`) against this stack."""
        env = {
            "STEADYEYE_REDIS_URL": self.redis_url,
            "STEADYEYE_INFERENCE_TRITON_URL": self.triton_grpc,
            "STEADYEYE_INFERENCE_MODEL_NAME": self.model.name,
            "STEADYEYE_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            **self._rollout_env(),
        }
        if self._redis_admin_password is not None:
            env["STEADYEYE_REDIS_PASSWORD"] = self._redis_admin_password
        return env

    @contextmanager
    def rollouts(self) -> Iterator[Rollouts]:
        """The rollout steps on this stack (what `steadyeye rollout` runs), events included."""
        producer = KafkaProducer(bootstrap_servers=self.bootstrap)
        tritons = SharedRepository(self.triton_grpc)
        try:
            yield Rollouts(
                self.redis_admin(),
                tritons,
                self.workdir / "model_repository",
                lambda event: events.send(producer, self.topics.rollouts, event),
                wait_s=60,
            )
        finally:
            tritons.close()
            producer.close()

    def _rollout_env(self) -> dict[str, str]:
        """The rollout controller's and `steadyeye rollout`'s: candidate versions go into the
        embedded Triton's repository."""
        return {
            "STEADYEYE_ROLLOUT_TRITON_URL": self.triton_grpc,
            "STEADYEYE_ROLLOUT_MODEL_NAME": self.model.name,
            "STEADYEYE_ROLLOUT_REPOSITORY": str(self.workdir / "model_repository"),
        }

    def _ensure_redis(self) -> None:
        server = shutil.which("redis-server")
        own = self.settings.redis == "own" or self.fresh_redis
        if own and server is None:
            self.say("redis-server is not installed: using the shared Redis instead")
        users = (*redis_acl.RULES, *redis_acl.READERS)
        passwords = {name: secrets.token_urlsafe(24) for name in users}
        if not own or server is None:
            try:
                self.redis_admin().ping()
                self.say(f"redis at {self.redis_url}")
            except redis.RedisError:
                pass
            else:
                self._provision_shared(passwords)
                return
        if server is None:
            raise ConfigError(
                f"Redis at {self.redis_url} does not answer and redis-server is not installed: "
                "install it (apt-get install redis-server) or set STEADYEYE_REDIS_URL"
            )
        # Ours: ACLs from the start, and no anonymous access (`default` has a password).
        self._redis_admin_password = secrets.token_urlsafe(24)
        acl_file = self.workdir / "redis-users.acl"
        acl_file.touch()
        acl_file.chmod(0o600)
        acl_file.write_text(redis_acl.acl_file(passwords, self._redis_admin_password))
        port = free_port()
        self._spawn(
            "redis",
            [
                server,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--aclfile",
                str(acl_file),
            ],
            os.environ.copy(),
        )
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        self.redis_passwords = passwords
        _wait("redis", lambda: bool(self.redis_admin().ping()), 30, self.processes["redis"])
        self.say(f"redis started on port {port}, one ACL user per service")

    def _provision_shared(self, passwords: dict[str, str]) -> None:
        """Add this stack's passwords to the services' users in a Redis we did not start; when
        its user may not manage ACLs, the services connect as that user (and say so)."""
        try:
            redis_acl.provision(self.redis_admin(), passwords)
        except redis.RedisError as exc:
            self.say(f"cannot create Redis ACL users there ({exc}): services connect as its user")
            return
        self.redis_passwords = passwords

    def _model_repository(self) -> Path:
        """Import the model once; re-import when the source file changes."""
        from steadyeye.modelimport import import_model

        source = model_file(self.model)
        repository = self.workdir / "model_repository"
        stamp = repository / f".{self.model.name}.source.json"
        wanted = {
            "path": str(source.resolve()),
            "size": source.stat().st_size,
            "mtime": source.stat().st_mtime,
            "family": self.model.family,
            "importer": _importer_digest(),  # a changed import tool re-imports the model
        }
        if not stamp.is_file() or json.loads(stamp.read_text()) != wanted:
            self.say(f"importing {source} as model {self.model.name}")
            shutil.rmtree(repository / self.model.name, ignore_errors=True)
            import_model(source, self.model.family, repository, self.model.name, target="python")
            stamp.write_text(json.dumps(wanted))
        # The import lists version 1 to load; a rollout's list since then resumes as it is.
        return repository

    def _fallback_repository(self, repository: Path) -> None:
        """The int8 variant (static quantisation, calibrated on frames of the sample clip),
        built once per source model: 5 s on this project's CPU (docs/design/degradation.md §3)."""
        from steadyeye.assets import MediaSettings, media_file
        from steadyeye.modelimport import import_model
        from steadyeye.modelimport.batch import resolve_input_size
        from steadyeye.validate.candidates import calibration_frames, int8_static

        source = model_file(self.model)
        stamp = repository / f".{self.fallback_model}.source.json"
        wanted = {"source": hashlib.sha256(source.read_bytes()).hexdigest(),
                  "importer": _importer_digest()}  # fmt: skip
        if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
            return
        self.say(f"building {self.fallback_model}, the int8 fallback of {self.model.name}")
        import onnx

        size = resolve_input_size(onnx.load(str(source)), None)
        video = media_file(load(MediaSettings), "vtest.avi")
        int8 = self.workdir / f"{self.fallback_model}.onnx"
        frames = calibration_frames(video, self.model.family, size)
        int8_static(source, int8, frames, self.model.family)
        shutil.rmtree(repository / self.fallback_model, ignore_errors=True)
        import_model(int8, self.model.family, repository, self.fallback_model, target="python")
        stamp.write_text(json.dumps(wanted))

    def _start_triton(self, repository: Path) -> None:
        triton = Triton.find()
        env = {**os.environ, **triton.env()}
        ports = self.triton_ports
        self._spawn(
            "triton",
            [
                str(triton.server),
                "--model-repository",
                str(repository),
                # Explicit control: `steadyeye rollout` loads a candidate version beside the
                # serving one; mode none would refuse (docs/design/model-rollout.md §2).
                "--model-control-mode",
                "explicit",
                "--load-model",
                self.model.name,
                *(("--load-model", self.fallback_model) if self.fallback else ()),
                "--backend-directory",
                str(triton.backend_dir(self.workdir)),
                "--http-port",
                str(ports["http"]),
                "--grpc-port",
                str(ports["grpc"]),
                "--metrics-port",
                str(ports["metrics"]),
                "--allow-cpu-metrics",
                "false",
                "--backend-config",
                "python,shm-default-byte-size=16777216",
                "--log-verbose",
                "0",
            ],
            env,
        )
        url = f"http://127.0.0.1:{ports['http']}/v2/models/{self.model.name}/ready"
        _wait(
            "triton",
            lambda: _http_ok(url),
            self.settings.startup_timeout_s,
            self.processes["triton"],
        )
        self.say(f"triton serving {self.model.name} on {self.triton_grpc} (gRPC)")

    def create_topics(self) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        names = [
            self.topics.frames,
            self.topics.ready,
            self.topics.detections,
            self.topics.tracks,
            self.topics.alerts,
            self.topics.drift,
            self.topics.deadletter,
            self.topics.shadow,
            self.topics.rollouts,
            self.topics.serving,
        ]
        try:
            admin.create_topics([NewTopic(n, self.topics.partitions, 1) for n in names])
        except TopicAlreadyExistsError:
            pass
        finally:
            admin.close()
        directory.create_topic(self.bootstrap, self.topics.cameras, self.topics.partitions)

    def service_env(self, name: str, instance: str | None = None) -> dict[str, str]:
        """The environment a service runs with: the user's STEADYEYE_* settings, then the
        addresses of this stack's servers (which must win)."""
        prefix = f"STEADYEYE_{name.upper()}_"
        env = {
            "STEADYEYE_KAFKA_MAX_POLL_INTERVAL_MS": str(self.settings.kafka_max_poll_interval_ms),
            "STEADYEYE_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "STEADYEYE_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            **os.environ,
            "STEADYEYE_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "STEADYEYE_REDIS_URL": self.redis_url,
            f"{prefix}HTTP_PORT": str(self.service_ports[instance or name]),
            f"{prefix}HTTP_HOST": "127.0.0.1",
        }
        if name in self.redis_passwords:
            env["STEADYEYE_REDIS_USERNAME"] = redis_acl.username(name)
            env["STEADYEYE_REDIS_PASSWORD"] = self.redis_passwords[name]
        if self.shm_dir is not None:
            env["STEADYEYE_CLAIM_CHECK_STORE"] = "shm"
            env["STEADYEYE_CLAIM_CHECK_SHM_DIR"] = str(self.shm_dir)
        if name in TRITON_CLIENTS:
            env[f"{prefix}TRITON_URL"] = self.triton_grpc
            env[f"{prefix}MODEL_NAME"] = self.model.name
        if name == "inference" and not self.settings.triton_url:
            # The embedded Triton shares this host's /dev/shm: no tensor through gRPC.
            env.setdefault(f"{prefix}SHARED_MEMORY", "true")
        if name == "inference" and self.tiers_file:
            env[f"{prefix}TIERS_FILE"] = str(self.tiers_file)
        if name == "ingest" and self.cameras_file:
            env[f"{prefix}CAMERAS_FILE"] = str(self.cameras_file)
        if name in ("alert", "console") and self.rules_file:
            env[f"{prefix}RULES_FILE"] = str(self.rules_file)
        if name == "webhook" and self.webhook_url:
            env[f"{prefix}URL"] = self.webhook_url
        if name == "rollout":
            env.update(self._rollout_env())
        if name == "capture" and self.capture_strategies:
            env[f"{prefix}STRATEGIES_FILE"] = str(self.capture_strategies)
            env[f"{prefix}DATASET_URL"] = self.capture_dataset
        return env

    def wait_ready(self, name: str) -> None:
        port = self.service_ports[name]
        _wait(
            name,
            lambda: _http_ok(f"http://127.0.0.1:{port}/readyz"),
            self.settings.startup_timeout_s,
            self.processes[name],
        )

    def start_service(
        self, name: str, instance: str | None = None, env: dict[str, str] | None = None
    ) -> ManagedProcess:
        """Start service `name`, supervised. instance: run another process of the same service
        under its own key in `processes` and `service_ports`, with its own port and log (e.g. a
        second ingest with its own cameras file); env: settings that win over the stack's."""
        key = instance or name
        self.service_ports.setdefault(key, free_port())
        process = self._spawn(
            key,
            [sys.executable, "-m", f"services.{name}"],
            {**self.service_env(name, key), **(env or {})},
            restart=True,
        )
        self._refresh_targets()
        return process

    def stop_service(self, key: str) -> int | None:
        """Stop one process (SIGTERM, then SIGKILL after its grace) and forget it and its port,
        so the stack no longer lists it. Returns its exit code."""
        process = self.processes.pop(key)
        self.service_ports.pop(key, None)
        self._refresh_targets()
        return process.stop()

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str], restart: bool = False
    ) -> ManagedProcess:
        process = ManagedProcess(name, argv, env, self.logs, restart=restart)
        self.processes[name] = process
        process.start()
        return process

    def stop(self) -> None:
        """Stop in pipeline order, so each service drains into a still-running next hop."""
        order = [
            "console",
            "ingest",
            "preprocess",
            "inference",
            "tracking",
            "monitor",
            "capture",
            "alert",
            "webhook",
            "rollout",
            "triton",
            "broker",
            "redis",
        ]
        for name in sorted(self.processes, key=lambda n: order.index(n) if n in order else 0):
            code = self.processes[name].stop()
            if code not in (0, None, -15):
                log.warning("%s exited with %s", name, code)
        self.processes.clear()
        if self.redis_passwords and self._redis_admin_password is None:
            try:  # a shared Redis: take this stack's passwords away again
                redis_acl.revoke(self.redis_admin(), self.redis_passwords)
            except redis.RedisError as exc:
                log.warning("could not remove this stack's Redis passwords: %s", exc)
        if self.shm_dir is not None:
            shutil.rmtree(self.shm_dir, ignore_errors=True)
