"""A broken video file as a camera source: the camera publishes every frame it can read, then
reports the failure once (log, metric, /readyz note) and the other cameras keep running. The
broken files are made here from the sample clip: cut short, header overwritten, header only."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

from services.core.claimcheck import SharedMemoryStore
from services.core.health import Health, serve
from services.core.settings import ClaimCheckSettings
from services.ingest.cameras import Camera
from services.ingest.failures import SourceFailures, source_failed
from services.ingest.sources import BrokenSource
from steadyeye.v1.frames_pb2 import Frame
from tests.conftest import wait_for
from tests.test_ingest import run_camera

VTEST_FRAMES = 795  # what vtest.avi's header promises


def truncated(vtest_avi: Path, tmp_path: Path, fraction: float = 0.05) -> Path:
    """The first `fraction` of the clip, as a copy interrupted mid-way would leave it."""
    data = vtest_avi.read_bytes()
    path = tmp_path / "truncated.avi"
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def garbage_header(vtest_avi: Path, tmp_path: Path) -> Path:
    """The whole clip with its first 4 KiB (the AVI header) overwritten by random bytes."""
    data = bytearray(vtest_avi.read_bytes())
    data[:4096] = np.random.default_rng(13).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path = tmp_path / "garbage-header.avi"
    path.write_bytes(bytes(data))
    return path


def header_only(vtest_avi: Path, tmp_path: Path) -> Path:
    """A valid header (it opens, 795 frames promised) and not one frame after it."""
    data = vtest_avi.read_bytes()
    path = tmp_path / "header-only.avi"
    path.write_bytes(data[: data.index(b"movi") + 4])
    return path


def mp4_without_index(_vtest_avi: Path, tmp_path: Path) -> Path:
    """An MP4 written by OpenCV, cut in half: its index (the moov atom) was at the end."""
    whole = tmp_path / "whole.mp4"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for i in range(40):
        writer.write(np.full((120, 160, 3), i * 6, np.uint8))
    writer.release()
    path = tmp_path / "half.mp4"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return path


def not_a_video(_vtest_avi: Path, tmp_path: Path) -> Path:
    path = tmp_path / "notes.avi"
    path.write_text("this is not a video\n" * 100)
    return path


def readable_frames(path: Path) -> int:
    """How many frames OpenCV decodes from the file: what ingest must publish, no fewer."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def errors_about(caplog: pytest.LogCaptureFixture, camera_id: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and f"camera {camera_id}:" in r.getMessage()
    ]


def failed(camera_id: str, reason: str) -> float:
    return source_failed.labels(camera_id, reason)._value.get()


@pytest.fixture
def store(tmp_path: Path) -> SharedMemoryStore:
    return SharedMemoryStore(ClaimCheckSettings(store="shm", shm_dir=tmp_path / "payloads"))


# ---- one camera worker on a broken file ------------------------------------------------------


def test_a_truncated_file_publishes_every_readable_frame_then_reports_the_truncation_once(
    vtest_avi, tmp_path, store, caplog
):
    path = truncated(vtest_avi, tmp_path)
    readable = readable_frames(path)
    health = Health(60)
    health.set("started", True)
    camera = Camera(id=unique("cut"), source=str(path), pace="fast")

    frames = run_camera(camera, store, failures=SourceFailures(health))

    assert 0 < readable < VTEST_FRAMES
    assert [f.ref.frame_id for f in frames] == list(range(readable))  # nothing readable lost
    reason = (
        f"video file {path} ended after {readable} frames but its header promises "
        f"{VTEST_FRAMES}: truncated or corrupt"
    )
    assert errors_about(caplog, camera.id) == [
        f"camera {camera.id}: {reason}; this camera stops, the others go on"
    ]
    assert failed(camera.id, "truncated") == 1
    assert health.ready() == (True, f"ok\ncamera {camera.id}: truncated: {reason}")


def test_a_looping_camera_replays_a_truncated_file_and_reports_it_only_once(
    vtest_avi, tmp_path, store, caplog
):
    path = truncated(vtest_avi, tmp_path)
    total = 2 * readable_frames(path) + 5  # two whole passes and a bit: two truncations met
    camera = Camera(
        id=unique("cut-loop"), source=str(path), pace="fast", loop=True, max_frames=total
    )

    frames = run_camera(camera, store)

    assert [f.ref.frame_id for f in frames] == list(range(total))
    [line] = errors_about(caplog, camera.id)
    assert line.endswith("truncated or corrupt; looping over the frames it has, the others go on")
    assert failed(camera.id, "truncated") == 1


def test_a_file_that_opens_but_yields_no_frames_stops_even_a_looping_camera(
    vtest_avi, tmp_path, store, caplog
):
    path = header_only(vtest_avi, tmp_path)
    camera = Camera(id=unique("empty"), source=str(path), pace="fast", loop=True)

    started = time.monotonic()
    frames = run_camera(camera, store, timeout_s=10)

    assert frames == []
    assert time.monotonic() - started < 5  # it stopped by itself: no re-open loop
    assert errors_about(caplog, camera.id) == [
        f"camera {camera.id}: cannot decode video file {path}: no frames could be read; "
        "this camera stops, the others go on"
    ]
    assert failed(camera.id, "no_frames") == 1


@pytest.mark.parametrize("make", [garbage_header, not_a_video, mp4_without_index])
def test_a_file_ffmpeg_cannot_open_is_reported_as_unreadable_once(
    make, vtest_avi, tmp_path, store, caplog
):
    path = make(vtest_avi, tmp_path)
    camera = Camera(id=unique("unreadable"), source=str(path), pace="fast", loop=True)

    frames = run_camera(camera, store, timeout_s=10)

    assert frames == []
    assert errors_about(caplog, camera.id) == [
        f"camera {camera.id}: cannot decode video file {path}: FFmpeg cannot open it (not a "
        "video, or its header is corrupt or cut off); this camera stops, the others go on"
    ]
    assert failed(camera.id, "unreadable") == 1


def test_the_same_failure_of_a_camera_is_reported_once(caplog):
    health = Health(60)
    failures = SourceFailures(health)
    error = BrokenSource("no_frames", "cannot decode video file x.avi: no frames could be read")

    camera_id = unique("twice")

    first = failures.report(camera_id, error, "this camera stops")
    second = failures.report(camera_id, error, "this camera stops")

    assert (first, second) == (True, False)
    assert len(errors_about(caplog, camera_id)) == 1


# ---- health notes -----------------------------------------------------------------------------


def get(port: int, path: str) -> tuple[int, str]:
    """Status and body; (0, "") while nothing listens yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def test_health_notes_appear_in_readyz_without_making_the_service_unready():
    health = Health(60)
    health.set("started", True)
    port = serve(health, "127.0.0.1", 0).server_address[1]

    health.note("camera b", "truncated: the file ends early")
    health.note("camera a", "unreadable: not a video\n(second line)")
    assert get(port, "/readyz") == (
        200,
        "ok\ncamera a: unreadable: not a video (second line)\n"
        "camera b: truncated: the file ends early\n",
    )

    health.set("dependencies", False)  # a failing condition still decides the status
    assert get(port, "/readyz")[0] == 503
    assert get(port, "/readyz")[1].startswith("dependencies\ncamera a: ")

    health.set("dependencies", True)
    health.clear_note("camera a")
    health.clear_note("camera b")
    assert get(port, "/readyz") == (200, "ok\n")


# ---- the ingest service, beside the running stack ----------------------------------------------


def service_errors(log_path: Path, camera_id: str) -> list[str]:
    """The service's JSON error lines about this camera (FFmpeg's own stderr lines skipped)."""
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line[:1] == "{"]
    return [e["msg"] for e in lines if e["level"] == "ERROR" and e.get("camera_id") == camera_id]


@pytest.mark.stack
def test_broken_cameras_are_reported_once_and_the_healthy_one_keeps_running(
    stack, pipeline, vtest_avi, tmp_path
):
    """One ingest process, four cameras: a truncated AVI, a corrupted header and a header
    without frames (both looping, so a spin would show as repeated reports) beside a healthy
    clip. /readyz stays 200 and names each broken camera with its reason."""
    cut, corrupt, empty, healthy = (unique(n) for n in ("cut", "corrupt", "empty", "healthy"))
    cut_path = truncated(vtest_avi, tmp_path)
    readable = readable_frames(cut_path)
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(
        "cameras:\n"
        f"- {{id: {cut}, source: '{cut_path}', pace: fast}}\n"
        f"- {{id: {corrupt}, source: '{garbage_header(vtest_avi, tmp_path)}', loop: true}}\n"
        f"- {{id: {empty}, source: '{header_only(vtest_avi, tmp_path)}', loop: true}}\n"
        f"- {{id: {healthy}, source: '{vtest_avi}', fps: 10, max_frames: 30}}\n"
    )
    key = f"ingest-{healthy}"
    try:
        stack.start_service(
            "ingest", instance=key, env={"STEADYEYE_INGEST_CAMERAS_FILE": str(cameras)}
        )
        port = stack.service_ports[key]
        notes = [f"camera {c}: {r}: " for c, r in [(cut, "truncated"), (corrupt, "unreadable")]]
        notes.append(f"camera {empty}: no_frames: ")
        assert wait_for(lambda: all(n in get(port, "/readyz")[1] for n in notes), 60, 0.2)

        # The healthy camera runs on (3 s at 10 fps) and the readable frames all went out.
        frames = pipeline.read_messages(stack.topics.frames, Frame, healthy, 30)
        assert [f.ref.frame_id for f in frames] == list(range(30))
        frames = pipeline.read_messages(stack.topics.frames, Frame, cut, readable)
        assert sorted(f.ref.frame_id for f in frames) == list(range(readable))

        status, body = get(port, "/readyz")
        assert status == 200
        assert body.startswith("ok\n")
        assert f"camera {cut}: truncated: video file {cut_path} ended after {readable} " in body
        assert f"camera {corrupt}: unreadable: cannot decode video file " in body
        assert f"camera {empty}: no_frames: cannot decode video file " in body
        assert healthy not in body

        metrics = get(port, "/metrics")[1]
        broken = {cut: "truncated", corrupt: "unreadable", empty: "no_frames"}
        for camera_id, reason in broken.items():
            sample = f'steadyeye_ingest_source_failed{{camera="{camera_id}",reason="{reason}"}} 1.0'
            assert sample in metrics
        assert f'steadyeye_ingest_source_failed{{camera="{healthy}"' not in metrics

        log_path = stack.processes[key].log_path
        for camera_id in (cut, corrupt, empty):
            assert len(service_errors(log_path, camera_id)) == 1, camera_id
        assert service_errors(log_path, healthy) == []
        assert stack.processes[key].running()
    finally:
        if key in stack.processes:
            stack.stop_service(key)
