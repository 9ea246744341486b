"""Drift monitoring on real footage: the sample clip, looped, learns a camera's reference; each
kind of change in front of the camera opens an episode within 100 frames, and the unaltered
stream opens none over 2,500 frames. The frame quality comes from preprocess's own meter."""

from __future__ import annotations

import uuid

import cv2
import numpy as np
import pytest

from services.monitor.camera import CameraMonitor
from services.monitor.handler import MonitorHandler
from services.monitor.settings import MonitorSettings, parse_buckets
from services.preprocess.quality import QualityMeter
from steadyeye.bench.alterations import ALTERATIONS, other_scene
from steadyeye.v1.common_pb2 import FrameQuality, FrameRef
from steadyeye.v1.detections_pb2 import Detections, ModelRef

SIZE = (416, 312)  # the letterboxed area preprocess measures for the 768x576 clip
WARMUP = 500
CHANGE_AT = 800  # past the clip's first loop point (795 frames)
WITHIN = 100  # frames after the change by which an episode must have started
KEPT = WITHIN + 10  # clip frames kept in memory to alter
SETTINGS = MonitorSettings(warmup_frames=WARMUP)
MODEL = "1"


@pytest.fixture(scope="module")
def clip(vtest_avi) -> tuple[list[FrameQuality], list[np.ndarray], FrameQuality]:
    """Every frame's quality in order, the first frames themselves, and the quality of frame 0
    measured right after the last one (the loop point)."""
    capture = cv2.VideoCapture(str(vtest_avi))
    meter, qualities, frames = QualityMeter(0.5), [], []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        small = cv2.resize(image, SIZE, interpolation=cv2.INTER_AREA)
        qualities.append(meter.measure("cam", small))
        if len(frames) < KEPT:
            frames.append(small)
    capture.release()
    return qualities, frames, meter.measure("cam", frames[0])


def unaltered(clip, t: int) -> FrameQuality:
    qualities, _, after_loop = clip
    return after_loop if t % len(qualities) == 0 and t else qualities[t % len(qualities)]


@pytest.fixture(scope="module")
def learned(clip) -> dict:
    """A camera's state right after its warm-up (calibration runs once for all tests)."""
    monitor = CameraMonitor("cam", SETTINGS)
    for t in range(WARMUP):
        assert monitor.observe(t, unaltered(clip, t), MODEL) is None
    assert monitor.reference is not None
    return monitor.to_state()


@pytest.mark.parametrize("change", [*ALTERATIONS, "another scene"])
def test_a_change_in_front_of_the_camera_opens_one_episode_within_100_frames(
    clip, learned, bus_jpg, change
):
    qualities, frames, _ = clip
    alter = ALTERATIONS.get(change) or other_scene(
        cv2.imdecode(np.frombuffer(bus_jpg, np.uint8), cv2.IMREAD_COLOR)
    )
    monitor = CameraMonitor.from_state("cam", SETTINGS, learned)
    for t in range(WARMUP, CHANGE_AT):
        assert monitor.observe(t, unaltered(clip, t), MODEL) is None, f"alarm at {t}"
    meter = QualityMeter(0.5)
    meter.measure("cam", frames[(CHANGE_AT - 1) % len(qualities)])  # motion from the last frame
    changes = []
    for t in range(CHANGE_AT, CHANGE_AT + WITHIN):
        image = alter(frames[t % len(qualities)], t)
        if (found := monitor.observe(t, meter.measure("cam", image), MODEL)) is not None:
            changes.append((t - CHANGE_AT, found))
    assert changes, f"{change}: no episode within {WITHIN} frames"
    delay, first = changes[0]
    assert first.started and len(changes) == 1, changes
    assert first.evidence and all(e.statistic > e.threshold for e in first.evidence)
    print(f"{change}: episode after {delay} frames on {[e.name for e in first.evidence]}")


def test_the_unaltered_stream_opens_no_episode_in_2500_frames(clip, learned):
    monitor = CameraMonitor.from_state("cam", SETTINGS, learned)
    for t in range(WARMUP, WARMUP + 2500):  # three loop points
        assert monitor.observe(t, unaltered(clip, t), MODEL) is None, f"false alarm at {t}"
    headroom = monitor.reference.threshold - monitor.statistic
    assert (headroom > 0).all()


def test_each_time_of_day_bucket_has_its_own_reference(clip):
    """Night (here: the clip's first frames darkened) is normal at night and drift by day."""
    _, frames, _ = clip
    meter, monitor = QualityMeter(0.5), CameraMonitor("cam", SETTINGS)

    def run(first: int, count: int, bucket: str, dark: bool) -> list:
        changes = []
        for t in range(first, first + count):
            image = frames[t % len(frames)]
            image = (image * 0.4).astype(np.uint8) if dark else image
            change = monitor.observe(t, meter.measure("cam", image), MODEL, bucket=bucket)
            changes += [change] if change else []
        return changes

    assert run(0, WARMUP + 100, "day", dark=False) == []
    assert run(WARMUP + 100, WARMUP + 100, "night", dark=True) == []  # learns the night
    assert set(monitor.references) == {"day", "night"}
    assert run(2 * WARMUP + 200, 200, "day", dark=False) == []
    [change] = run(2 * WARMUP + 400, 50, "day", dark=True)
    assert change.started and "brightness" in [e.name for e in change.evidence]
    assert change.reference_id.endswith("/day")


@pytest.mark.parametrize(
    ("buckets", "error"),
    [
        ("day=7-19", "cover each hour of the day exactly once"),
        ("day=7-19,night=18-7", "cover each hour of the day exactly once"),
        ("day=7,night=19-7", "write it as name=FROM-TO"),
        ("day=7-19,night=19-31", "hours 0-24"),
    ],
)
def test_time_buckets_that_do_not_split_the_day_are_refused(buckets, error):
    with pytest.raises(ValueError, match=error):
        parse_buckets(buckets)
    assert parse_buckets("day=7-19,night=19-7") == [("day", 7, 19), ("night", 19, 7)]


def _open_episode(clip, learned) -> tuple[CameraMonitor, object]:
    monitor = CameraMonitor.from_state("cam", SETTINGS, learned)
    _, frames, _ = clip
    meter, started = QualityMeter(0.5), None
    for t in range(WARMUP, WARMUP + 20):
        started = started or monitor.observe(t, meter.measure("cam", frames[0] * 0), MODEL)
    assert started is not None and started.started
    return monitor, started


@pytest.mark.parametrize(
    ("decision", "note"),
    [
        (lambda m, ref: m.relearn(), "accepted: learning a new reference"),
        (lambda m, ref: m.pin(ref), "a reference was pinned"),
        (lambda m, ref: m.observe(WARMUP + 20, FrameQuality(), "2"), "model version 2"),
    ],
    ids=["accept", "pin", "new model version"],
)
def test_an_open_episode_ends_when_normal_is_redefined(clip, learned, decision, note):
    """Accepting the change, pinning a reference or another model ends the episode, with the
    STARTED event's id (so its alert resolves) and a note saying why."""
    monitor, started = _open_episode(clip, learned)
    reference = CameraMonitor.from_state("cam", SETTINGS, learned).reference
    ended = decision(monitor, reference)
    assert (ended.started, ended.event_id) == (False, started.event_id)
    assert ended.note.startswith(note)
    assert monitor.episode_start is None and not monitor.statistic.any()


def test_a_full_warm_up_waits_to_calibrate_and_slides_on_to_the_latest_frames(clip):
    """The handler spreads calibrations (~2 s each) over batches; a camera kept waiting learns
    from its latest frames once it may."""
    monitor = CameraMonitor("cam", SETTINGS)
    for t in range(WARMUP + 30):
        monitor.observe(t, unaltered(clip, t), MODEL, may_learn=False)
    assert monitor.reference is None and len(monitor.warmup) == WARMUP
    monitor.observe(WARMUP + 30, unaltered(clip, WARMUP + 30), MODEL)
    assert monitor.reference.reference_id == f"cam@{WARMUP + 30}/{MODEL}"


def test_cameras_that_start_together_calibrate_one_per_batch(clip, local_redis):
    """Each calibration takes ~2 s of CPU: a batch holding many cameras' last warm-up frames
    calibrates one of them, so the loop never stalls past Kafka's poll interval."""
    client = local_redis
    cameras = [f"calibrate-{uuid.uuid4().hex[:8]}-{i}" for i in range(3)]
    handler = MonitorHandler(client, "drift", MonitorSettings(warmup_frames=50))

    def batch(frames: range) -> list[bool]:
        for t in frames:
            for camera in cameras:
                ref = FrameRef(camera_id=camera, frame_id=t, width=768, height=576)
                handler.handle(Detections(ref=ref, model=ModelRef(version=MODEL),
                                          quality=unaltered(clip, t)))  # fmt: skip
        handler.before_commit()
        return [handler._monitor(c).reference is not None for c in cameras]

    try:
        assert batch(range(50)) == [True, False, False]
        assert batch(range(50, 51)) == [True, True, False]
        assert batch(range(51, 52)) == [True, True, True]
    finally:
        client.delete(*[f"steadyeye:state:monitor:{c}" for c in cameras])
        client.delete(*[f"steadyeye:monitor:history:{c}" for c in cameras])
