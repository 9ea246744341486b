"""Fixtures: the real embedded stack (Tansu broker, Triton, Redis) once per session, and a
client that talks to it the way other services and downstream consumers do."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import redis
from google.protobuf.message import Message
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services.core.claimcheck import open_store
from services.core.messages import Headers, decode, header, schema_headers
from services.core.payload_keys import frame_key
from services.core.settings import RedisSettings
from steadyeye.assets import SHARED_CANDIDATES
from steadyeye.embedded.stack import Stack
from steadyeye.otlp_sink import OtlpReceiver
from steadyeye.v1.common_pb2 import FrameRef, Payload
from steadyeye.v1.frames_pb2 import Frame, ImageEncoding

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
PROBE_CAMERA = "trace-probe"


def shared_file(sub: str, name: str) -> Path:
    for root in SHARED_CANDIDATES:
        if (root / sub / name).is_file():
            return root / sub / name
    pytest.skip(
        f"{sub}/{name} not found in {[str(r) for r in SHARED_CANDIDATES]}: "
        "these tests need the shared model and media beside the checkout"
    )


@pytest.fixture
def local_redis() -> Iterator[redis.Redis]:
    """The machine's own Redis (STEADYEYE_REDIS_URL), for handler tests without a stack; the
    test is skipped where none answers. Tests use unique camera ids and clean up after them."""
    client = redis.Redis.from_url(RedisSettings().url)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {RedisSettings().url}: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def bus_jpg() -> bytes:
    return shared_file("media", "bus.jpg").read_bytes()


@pytest.fixture(scope="session")
def vtest_avi() -> Path:
    return shared_file("media", "vtest.avi")


@pytest.fixture(scope="session")
def vtest_frames(vtest_avi: Path) -> list[np.ndarray]:
    """The sample clip's first 100 frames, decoded once (int8 candidates are calibrated on
    frames 300-610, so these are new to them)."""
    capture = cv2.VideoCapture(str(vtest_avi))
    frames = [capture.read()[1] for _ in range(100)]
    capture.release()
    return frames


@pytest.fixture(scope="session")
def model_candidates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Exports of the demo model, built once: int8 (static, calibrated on vtest.avi frames
    300-610), div255 (the normalisation mismatch), permuted (classes 0 and 2 swapped)."""
    from steadyeye.validate.candidates import build_all

    return build_all(
        shared_file("models", "yolox_nano.onnx"),
        shared_file("media", "vtest.avi"),
        tmp_path_factory.mktemp("candidates"),
    )


@pytest.fixture
def http_video(vtest_avi: Path, tmp_path: Path) -> Iterator[str]:
    """The sample clip served over HTTP from 127.0.0.1: a live stream source."""
    shutil.copy(vtest_avi, tmp_path / "live.avi")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/live.avi"
    server.shutdown()


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpReceiver) -> Iterator[Stack]:
    """One stack for the session; its services export traces to the test's OTLP receiver."""
    shared_file("models", "yolox_nano.onnx")
    tracing_env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp.port}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "STEADYEYE_STACK_REDIS": "own",  # a fresh Redis: no tracker or alert state from before
        "STEADYEYE_MONITOR_WARMUP_FRAMES": "60",  # tests/test_monitor_service.py
        "STEADYEYE_ROLLOUT_POLICY": str(DATA / "rollout-policy.yaml"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in tracing_env.items():
            patch.setenv(name, value)
        workdir = tmp_path_factory.mktemp("stack")
        with Stack(
            cameras_file=_probe_cameras(workdir),
            rules_file=DATA / "rules.yaml",
            workdir=workdir,
            capture_strategies=ROOT / "examples" / "capture-strategies.yaml",
        ) as running:
            yield running


def _probe_cameras(workdir: Path) -> Path:
    """Ingest runs too, with one camera that sends one frame: the probe for tracing tests."""
    folder = workdir / "probe"
    folder.mkdir()
    (folder / "bus.jpg").write_bytes(shared_file("media", "bus.jpg").read_bytes())
    cameras = workdir / "cameras.yaml"
    cameras.write_text(f"cameras:\n- {{id: {PROBE_CAMERA}, source: {folder}, pace: fast}}\n")
    return cameras


class Pipeline:
    """Produce frames into the running pipeline and read any topic back, per camera."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.topics = stack.topics
        self.producer = KafkaProducer(
            bootstrap_servers=stack.bootstrap,
            acks="all",
            max_request_size=4 * 1024 * 1024,
            enable_idempotence=False,  # survives the broker restart of the chaos suite
        )
        self.redis = stack.redis_admin()
        self.payloads = open_store(stack.claim_check, lambda: self.redis)  # as the services

    def send_frame(self, camera_id: str, frame_id: int, image: bytes | np.ndarray) -> None:
        """A JPEG inline, or a raw BGR array through the claim-check store, like ingest does."""
        ref = FrameRef(camera_id=camera_id, frame_id=frame_id)
        ref.capture_time.GetCurrentTime()
        if isinstance(image, np.ndarray):
            ref.height, ref.width = image.shape[:2]
            payload = self.payloads.put(frame_key(camera_id, frame_id), image.tobytes())
            frame = Frame(ref=ref, encoding=ImageEncoding.IMAGE_ENCODING_BGR24, image=payload)
        else:
            frame = Frame(
                ref=ref, encoding=ImageEncoding.IMAGE_ENCODING_JPEG, image=Payload(inline=image)
            )
        self.send_raw(frame.SerializeToString(), schema_headers(frame), camera_id)

    def send_raw(self, value: bytes, headers: Headers, key: str, topic: str | None = None) -> None:
        self.producer.send(
            topic or self.topics.frames, key=key.encode(), value=value, headers=headers
        )
        self.producer.flush()

    def read(
        self, topic: str, keep: Callable[[object], bool], count: int, timeout_s: float = 60.0
    ) -> list:
        """Records of `topic` for which keep(record) holds, until `count` or the timeout."""
        consumer = KafkaConsumer(bootstrap_servers=self.stack.bootstrap, enable_auto_commit=False)
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        found, deadline = [], time.monotonic() + timeout_s
        try:
            while len(found) < count and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=200).values():
                    found += [r for r in records if keep(r)]
        finally:
            consumer.close()
        return found

    def read_messages(
        self,
        topic: str,
        message_type: type[Message],
        camera_id: str,
        count: int,
        timeout_s: float = 60.0,
    ) -> list:
        records = self.read(topic, lambda r: r.key == camera_id.encode(), count, timeout_s)
        return [decode(r.value, r.headers, message_type) for r in records]

    def dead_letters(self, camera_id: str, count: int, timeout_s: float = 60.0) -> list[str]:
        records = self.read(
            self.topics.deadletter, lambda r: r.key == camera_id.encode(), count, timeout_s
        )
        return [header(r.headers, "x-deadletter-reason").decode() for r in records]


@pytest.fixture
def pipeline(stack: Stack) -> Iterator[Pipeline]:
    client = Pipeline(stack)
    yield client
    client.producer.close()


@pytest.fixture
def camera_id() -> str:
    """A camera of its own for each test, so tests never see each other's frames."""
    return f"test-{uuid.uuid4().hex[:8]}"


def jpeg_of(image, quality: int = 90) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def readyz(port: int) -> int:
    """A service's /readyz status; 0 while nothing listens (e.g. between restarts)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def wait_for(predicate: Callable[[], bool], timeout_s: float, every_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every_s)
    return False


def installed(name: str, package: str) -> str:
    """The path of a Debian tool the test needs (scripts/setup.sh installs `package`). Missing:
    skipped on a developer's machine, a failure in CI, whose set-up must have installed it."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (apt-get install {package}; scripts/setup.sh does)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI's set-up must install it")
        pytest.skip(reason)
    return path
