"""Who may publish a camera (services/ingest/lease.py) and which camera threads a replica runs
(services/ingest/fleet.py), on a real Redis: a camera runs on one replica at a time, a stalled
replica's lease runs out, and a change to one camera leaves the others alone."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from services.ingest.cameras import Camera
from services.ingest.fleet import Fleet
from services.ingest.lease import CameraLeases, lease_key
from tests.conftest import wait_for


@pytest.fixture
def replicas(local_redis):
    stop = threading.Event()
    made: list[CameraLeases] = []

    def make(name: str, ttl_s: float = 1.0, renew: bool = True) -> CameraLeases:
        leases = CameraLeases(local_redis, f"{name}-{uuid.uuid4().hex[:6]}", ttl_s, stop)
        if renew:
            leases.start()
        made.append(leases)
        return leases

    yield make
    stop.set()


@pytest.fixture
def camera_id(local_redis) -> str:
    camera = f"lease-{uuid.uuid4().hex[:8]}"
    yield camera
    local_redis.delete(lease_key(camera))


def test_a_camera_is_held_by_one_replica_until_it_releases_it(replicas, camera_id):
    a, b = replicas("a"), replicas("b")
    assert a.acquire(camera_id) and a.holds(camera_id)
    assert not b.acquire(camera_id) and not b.holds(camera_id)
    time.sleep(1.5)  # past the TTL: renewed, still a's
    assert a.holds(camera_id) and not b.acquire(camera_id)
    a.release(camera_id)
    assert not a.holds(camera_id)
    assert b.acquire(camera_id) and b.holds(camera_id)


def test_a_stalled_replicas_lease_runs_out_and_it_stops_publishing(replicas, camera_id):
    stalled = replicas("stalled", renew=False)  # stopped heartbeating: never renews
    assert stalled.acquire(camera_id)
    other = replicas("other")
    assert wait_for(lambda: other.acquire(camera_id), timeout_s=5)
    # By its own clock the stalled one stopped before the other could start (0.8 x TTL).
    assert not stalled.holds(camera_id)


def test_a_lease_taken_over_is_not_renewed_by_its_old_holder(replicas, camera_id, local_redis):
    a = replicas("a")
    assert a.acquire(camera_id)
    local_redis.set(lease_key(camera_id), b"someone-else", px=5000)  # taken over meanwhile
    assert wait_for(lambda: not a.holds(camera_id), timeout_s=3)
    assert local_redis.get(lease_key(camera_id)) == b"someone-else"
    a.release(camera_id)  # not ours: left alone
    assert local_redis.get(lease_key(camera_id)) == b"someone-else"


class Recorder:
    """A camera 'run' that only records when it started and stopped."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, camera: Camera, halt: threading.Event) -> None:
        with self._lock:
            self.events.append(("start", f"{camera.id}:{camera.source}"))
        halt.wait()
        with self._lock:
            self.events.append(("stop", f"{camera.id}:{camera.source}"))


def test_the_fleet_starts_changes_and_stops_only_the_cameras_that_changed(replicas, local_redis):
    ids = [f"fleet-{uuid.uuid4().hex[:6]}-{k}" for k in range(3)]
    a, b, c = (Camera(id=i, source=f"rtsp://h/{i}") for i in ids)
    runs, stop = Recorder(), threading.Event()
    fleet = Fleet(runs, replicas("fleet"), stop)
    try:
        fleet.apply({a.id: a, b.id: b})
        assert wait_for(lambda: len(runs.events) == 2, timeout_s=5)
        moved_b = b.model_copy(update={"source": "rtsp://h/new"})
        fleet.apply({a.id: a, b.id: moved_b, c.id: c})
        assert wait_for(lambda: len(runs.events) == 5, timeout_s=5)
        changed = runs.events[2:]  # threads: b's restart and c's start in either order
        old_b, new_b = ("stop", f"{b.id}:{b.source}"), ("start", f"{b.id}:rtsp://h/new")
        assert sorted(changed) == sorted([old_b, new_b, ("start", f"{c.id}:{c.source}")])
        assert changed.index(old_b) < changed.index(new_b)  # stopped before it starts again
        assert ("stop", f"{a.id}:{a.source}") not in runs.events
        fleet.stop_all()
        assert sorted(e for e in runs.events if e[0] == "stop") == sorted(
            [("stop", f"{a.id}:{a.source}"), ("stop", f"{b.id}:{b.source}"),
             ("stop", f"{b.id}:rtsp://h/new"), ("stop", f"{c.id}:{c.source}")]
        )  # fmt: skip
        assert all(local_redis.get(lease_key(i)) is None for i in ids)  # all released
    finally:
        stop.set()
        fleet.stop_all()


def test_a_camera_whose_lease_is_held_elsewhere_waits_for_it(replicas, local_redis):
    camera = Camera(id=f"fleet-{uuid.uuid4().hex[:6]}", source="rtsp://h/x")
    holder = replicas("holder")
    assert holder.acquire(camera.id)
    runs, stop = Recorder(), threading.Event()
    fleet = Fleet(runs, replicas("waiting"), stop)
    try:
        fleet.apply({camera.id: camera})
        time.sleep(1.0)
        assert runs.events == []  # not while the other replica has it
        holder.release(camera.id)
        assert wait_for(lambda: runs.events == [("start", f"{camera.id}:{camera.source}")], 5)
    finally:
        stop.set()
        fleet.stop_all()
        local_redis.delete(lease_key(camera.id))
