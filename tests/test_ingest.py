"""Ingest's camera workers on real sources: a video file, an image folder, an HTTP stream."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from services.core.claimcheck import PayloadStore, RedisStore, SharedMemoryStore
from services.core.errors import ConfigError, TransientError
from services.core.payload_keys import FRAMES
from services.core.settings import ClaimCheckSettings
from services.ingest.camera import CameraWorker, dropped, reconnects
from services.ingest.cameras import Camera, load_cameras
from services.ingest.failures import SourceFailures
from services.ingest.settings import IngestSettings
from steadyeye.v1.frames_pb2 import Frame, ImageEncoding

SETTINGS = IngestSettings(
    cameras_file="unused", reconnect_initial_s=0.1, reconnect_max_s=0.2, stale_after_s=2
)


@pytest.fixture
def payloads(local_redis) -> PayloadStore:
    return RedisStore(local_redis, ClaimCheckSettings())


class Gate:
    """Stands in for ingest's Backlog: open means the pipeline has room."""

    def __init__(self) -> None:
        self.room = threading.Event()
        self.room.set()

    def has_room_for(self, priority: str) -> bool:
        return self.room.is_set()

    def wait_for_room(self, priority: str = "high") -> bool:
        return self.room.wait(30)

    def published(self) -> None:
        pass


def run_camera(
    camera: Camera,
    payloads: PayloadStore,
    until=None,
    timeout_s: float = 30,
    backlog: Gate | None = None,
    on_publish=lambda frames: None,
    failures: SourceFailures | None = None,
):
    frames: list[Frame] = []
    stop = threading.Event()

    def publish(frame: Frame) -> bool:
        frames.append(frame)
        on_publish(frames)
        return True

    worker = CameraWorker(
        camera,
        SETTINGS,
        payloads,
        publish,
        lambda _c: len(frames),
        backlog or Gate(),
        stop,
        failures,
    )
    worker.start()
    deadline = time.monotonic() + timeout_s
    while worker.is_alive() and time.monotonic() < deadline and not (until and until(frames)):
        time.sleep(0.05)
    stop.set()
    worker.join(10)
    return frames


def test_video_file_frames_are_numbered_and_claim_checked(vtest_avi, payloads):
    camera = Camera(id="file-cam", source=str(vtest_avi), pace="fast", max_frames=5)

    frames = run_camera(camera, payloads)

    assert [f.ref.frame_id for f in frames] == [0, 1, 2, 3, 4]
    first = frames[0]
    assert (first.ref.width, first.ref.height) == (768, 576)
    assert first.encoding == ImageEncoding.IMAGE_ENCODING_BGR24
    assert first.image.claim_check.size_bytes == 768 * 576 * 3
    assert len(payloads.get(first.image, FRAMES.of(first.ref))) == 768 * 576 * 3


def test_realtime_pacing_follows_the_source_frame_rate(vtest_avi, payloads):
    camera = Camera(id="paced", source=str(vtest_avi), pace="realtime", fps=20, max_frames=11)

    started = time.monotonic()
    run_camera(camera, payloads)

    assert time.monotonic() - started >= 0.5 - 0.05  # 10 intervals at 20 fps


def test_image_folder_passes_jpegs_through_unchanged(tmp_path, bus_jpg, payloads):
    for name in ("b.jpg", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(bus_jpg if name.endswith(".jpg") else b"x")

    frames = run_camera(Camera(id="folder", source=str(tmp_path), pace="fast"), payloads)

    assert len(frames) == 2
    assert all(f.encoding == ImageEncoding.IMAGE_ENCODING_JPEG for f in frames)
    assert payloads.get(frames[0].image, FRAMES.of(frames[0].ref)) == bus_jpg


def test_a_missing_source_stops_only_its_camera(tmp_path, bus_jpg, payloads):
    (tmp_path / "a.jpg").write_bytes(bus_jpg)

    missing = run_camera(Camera(id="gone", source=str(tmp_path / "nope.avi")), payloads)
    working = run_camera(Camera(id="ok", source=str(tmp_path), pace="fast"), payloads)

    assert missing == [] and len(working) == 1


def test_http_stream_is_read_and_ids_come_from_the_live_counter(http_video, payloads):
    camera = Camera(id="http-cam", source=http_video, max_frames=20)

    frames = run_camera(camera, payloads)

    assert len(frames) == 20
    assert [f.ref.frame_id for f in frames] == list(range(20))
    assert frames[0].source_uri == http_video


def test_a_file_source_pauses_while_the_backlog_is_full_and_loses_nothing(vtest_avi, payloads):
    gate = Gate()

    def close_after_three(frames: list[Frame]) -> None:
        if len(frames) == 3:
            gate.room.clear()
            threading.Timer(1.0, gate.room.set).start()

    camera = Camera(id="paused", source=str(vtest_avi), pace="fast", max_frames=8)
    started = time.monotonic()
    frames = run_camera(camera, payloads, backlog=gate, on_publish=close_after_three)

    assert [f.ref.frame_id for f in frames] == list(range(8))
    assert time.monotonic() - started >= 1.0


def test_a_live_source_drops_its_oldest_frames_while_the_backlog_is_full(http_video, payloads):
    """The stream is read on while the gate is closed; only the newest 2 frames (the live
    buffer) are published when it opens, the rest are counted as dropped."""
    gate = Gate()
    before = dropped.labels("live-drop")._value.get()

    def close_after_five(frames: list[Frame]) -> None:
        if len(frames) == 5:
            gate.room.clear()
            threading.Timer(1.0, gate.room.set).start()

    camera = Camera(id="live-drop", source=http_video)
    frames = run_camera(
        camera,
        payloads,
        backlog=gate,
        on_publish=close_after_five,
        until=lambda frames: len(frames) >= 10,
    )

    lost = dropped.labels("live-drop")._value.get() - before
    assert lost >= 5  # the HTTP source delivers far faster than 5 frames/s
    ids = [f.ref.frame_id for f in frames]
    assert ids == sorted(set(ids))  # dropped frames use no ids: no duplicates, in order


def test_an_unreachable_stream_is_retried_with_backoff():
    camera = Camera(id="down-cam", source="http://127.0.0.1:9/stream.mjpg")
    before = reconnects.labels("down-cam")._value.get()

    frames = run_camera(camera, payloads=None, until=lambda _f: False, timeout_s=1.5)

    assert frames == []
    assert reconnects.labels("down-cam")._value.get() - before >= 2


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ("cameras: []", "at least 1"),
        ("cameras:\n- {id: a, source: x.avi, pase: fast}", "pase"),
        ("cameras:\n- {id: 'bad id', source: x.avi}", "cameras.0.id"),
        ("cameras:\n- {id: a, source: x}\n- {id: a, source: y}", "duplicate camera ids ['a']"),
        ("cameras: [", "cameras file"),
    ],
)
def test_invalid_cameras_files_are_rejected_with_the_reason(tmp_path, document, error):
    path = tmp_path / "cameras.yaml"
    path.write_text(document)
    with pytest.raises(ConfigError, match=error.replace("[", r"\[").replace("]", r"\]")):
        load_cameras(path)


class FullForAWhile(SharedMemoryStore):
    """A tmpfs that is full (or a Redis that is down) for the first `failures` writes."""

    def __init__(self, directory: Path, failures: int) -> None:
        super().__init__(ClaimCheckSettings(store="shm", shm_dir=directory))
        self.failures = failures

    def _write(self, key: str, data: memoryview) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise TransientError(f"shared memory cannot store {key}: no space left on device")
        super()._write(key, data)


def test_a_file_source_waits_out_an_unavailable_store_and_loses_nothing(vtest_avi, tmp_path):
    store = FullForAWhile(tmp_path, failures=3)
    camera = Camera(id="store-down", source=str(vtest_avi), pace="fast", max_frames=5)

    frames = run_camera(camera, store)

    assert [f.ref.frame_id for f in frames] == list(range(5))
    assert store.failures == 0
    assert all(len(store.get(f.image, FRAMES.of(f.ref))) == 768 * 576 * 3 for f in frames)
