"""Cameras as data (issue 18): `steadyeye cameras apply|list|remove` against the embedded broker,
and an ingest replica without a cameras file following the topic while frames flow: a camera
added starts, a camera removed stops, the others are not disturbed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from services.core.messages import decode, schema_headers
from services.ingest import directory
from services.ingest.cameras import Camera
from services.ingest.lease import lease_key
from steadyeye.bench.livefeed import LiveFeed
from steadyeye.embedded.stack import Stack
from steadyeye.tally import TopicReader
from steadyeye.v1.cameras_pb2 import CameraConfig
from steadyeye.v1.frames_pb2 import Frame

pytestmark = pytest.mark.stack


@pytest.fixture
def topic(stack: Stack) -> str:
    """A cameras topic of the test's own, so no ingest replica runs what it writes."""
    name = f"test-cameras-{uuid.uuid4().hex[:8]}"
    directory.create_topic(stack.bootstrap, name, 2)
    return name


def cli(stack: Stack, topic: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STEADYEYE_KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
           "STEADYEYE_TOPIC_CAMERAS": topic}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "steadyeye.cli", "cameras", *args],
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip


def cameras_file(path: Path, cameras: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"cameras": cameras}))
    return path


def test_apply_makes_the_topic_hold_exactly_the_files_cameras(stack, topic, tmp_path):
    first = cameras_file(tmp_path / "a.yaml", [
        {"id": "door", "source": "rtsp://10.0.0.1/door"},
        {"id": "gate", "source": "rtsp://10.0.0.1/gate"},
        {"id": "yard", "source": "rtsp://10.0.0.1/yard"},
    ])  # fmt: skip
    second = cameras_file(tmp_path / "b.yaml", [
        {"id": "door", "source": "rtsp://10.0.0.1/door"},
        {"id": "gate", "source": "rtsp://10.0.0.2/gate", "priority": "high"},
        {"id": "lobby", "source": "rtsp://10.0.0.1/lobby"},
    ])  # fmt: skip

    done = cli(stack, topic, "apply", str(first))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "+ door", "+ gate", "+ yard", "changed: 3 added, 0 updated, 0 removed, 0 unchanged"
    ]  # fmt: skip
    dry = cli(stack, topic, "apply", "--dry-run", str(second))
    assert dry.stdout.splitlines() == [
        "+ lobby", "~ gate", "- yard", "would change: 1 added, 1 updated, 1 removed, 1 unchanged"
    ]  # fmt: skip
    assert set(directory.read_all(stack.bootstrap, topic)) == {"door", "gate", "yard"}

    assert cli(stack, topic, "apply", str(second)).returncode == 0
    listed = json.loads(cli(stack, topic, "list", "--json").stdout)
    assert sorted(c["id"] for c in listed) == ["door", "gate", "lobby"]
    assert {c["id"]: c.get("priority", "normal") for c in listed}["gate"] == "high"


def test_remove_forgets_a_camera_and_refuses_an_unknown_one(stack, topic):
    two = [Camera(id="a", source="rtsp://h/a"), Camera(id="b", source="rtsp://h/b")]
    directory.publish(stack.bootstrap, topic, two, [])
    assert cli(stack, topic, "remove", "a").returncode == 0
    assert set(directory.read_all(stack.bootstrap, topic)) == {"b"}
    unknown = cli(stack, topic, "remove", "nope")
    assert unknown.returncode == 2 and "no such camera: nope" in unknown.stderr


def test_a_file_with_a_mistake_changes_nothing(stack, topic, tmp_path):
    directory.publish(stack.bootstrap, topic, [Camera(id="a", source="rtsp://h/a")], [])
    bad = cameras_file(tmp_path / "bad.yaml", [{"id": "a", "source": "rtsp://h/a", "fsp": 5}])
    done = cli(stack, topic, "apply", str(bad))
    assert done.returncode == 2 and "fsp" in done.stderr
    assert set(directory.read_all(stack.bootstrap, topic)) == {"a"}


@pytest.fixture
def fleet_ingest(stack: Stack) -> Iterator[str]:
    """One ingest replica without a cameras file: it runs what steadyeye.cameras.v1 holds."""
    name = f"ingest-fleet-{uuid.uuid4().hex[:6]}"
    stack.start_service("ingest", instance=name, env={"STEADYEYE_INGEST_CAMERAS_FILE": ""})
    stack.wait_ready(name)
    yield name
    stack.stop_service(name)


def test_cameras_added_and_removed_at_runtime_start_and_stop_alone(stack, fleet_ingest, vtest_avi):
    prefix = f"rt-{uuid.uuid4().hex[:6]}"
    a, b, c = (f"{prefix}-{name}" for name in "abc")
    reader = TopicReader(stack.bootstrap, [stack.topics.frames])
    seen: dict[str, list[float]] = {a: [], b: [], c: []}

    def read_for(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for record in reader.records():
                ref = decode(record.value, record.headers, Frame).ref
                if ref.camera_id in seen:  # when ingest read it (wall clock, this host)
                    seen[ref.camera_id].append(ref.capture_time.ToMilliseconds() / 1000)

    with LiveFeed(vtest_avi) as feed:
        try:
            directory.publish(stack.bootstrap, stack.topics.cameras,
                              [Camera(id=i, source=feed.url(i)) for i in (a, b)], [])  # fmt: skip
            deadline = time.monotonic() + 60
            while not (seen[a] and seen[b]) and time.monotonic() < deadline:
                read_for(0.5)
            assert seen[a] and seen[b], "the cameras did not start"
            read_for(3)

            changed_at = time.time()
            directory.publish(stack.bootstrap, stack.topics.cameras,
                              [Camera(id=c, source=feed.url(c))], [b])  # fmt: skip
            read_for(12)

            assert seen[c] and seen[c][0] - changed_at < 10  # added: started within seconds
            assert max(seen[b]) - changed_at < 5  # removed: stopped within seconds
            # Untouched: a's frames never paused (10 fps; a reconnect would take over a second).
            gaps = np.diff([t for t in seen[a] if t > changed_at - 1])
            assert len(gaps) > 50 and gaps.max() < 1.5
            assert stack.redis_admin().get(lease_key(b)) is None  # released when it stopped
        finally:
            directory.publish(stack.bootstrap, stack.topics.cameras, [], [a, b, c])
            reader.close()


@pytest.mark.parametrize(
    ("value_for", "reason"),
    [
        (lambda key: b"\x0a\xff\xff", "cannot parse steadyeye.v1.CameraConfig"),  # truncated
        (lambda key: CameraConfig(id=key, source=" ").SerializeToString(),
         "source must not be empty"),
        (lambda key: CameraConfig(id="someone-else", source="rtsp://h/x").SerializeToString(),
         "names camera 'someone-else'"),
    ],
    ids=["truncated", "invalid", "wrong-key"],
)  # fmt: skip
def test_a_camera_record_ingest_cannot_run_is_dead_lettered_with_the_reason(
    stack, pipeline, fleet_ingest, value_for, reason
):
    key = f"bad-{uuid.uuid4().hex[:8]}"
    pipeline.send_raw(value_for(key), schema_headers(CameraConfig()), key, stack.topics.cameras)
    try:
        [why] = pipeline.dead_letters(key, 1)
        assert reason in why
    finally:
        directory.publish(stack.bootstrap, stack.topics.cameras, [], [key])
