"""The detector-output signals, on the real model's detections of the sample clip: the unaltered
stream (images and detections) opens no episode over 2,500 frames, and a model that goes wrong
on unchanged images — less sure, another class, boxes jumping, boxes the wrong size — opens one
within 100 frames, on detector signals only (the image signals cannot see it). A frame a
fallback model answered (Detections.degraded) feeds the image signals only."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import cv2
import numpy as np
import pytest

from services.core.statestore import StateStore
from services.monitor.camera import CameraMonitor
from services.monitor.handler import MonitorHandler
from services.monitor.settings import MonitorSettings
from services.monitor.signals import DETECTOR_SIGNALS, IMAGE, NAMES
from services.preprocess.quality import QualityMeter
from steadyeye.local_model import LocalModel
from steadyeye.v1.common_pb2 import BoundingBox, FrameQuality, FrameRef
from steadyeye.v1.detections_pb2 import DegradedReason, Detection, Detections, ModelRef
from tests.conftest import shared_file

SIZE = (416, 312)  # the letterboxed area preprocess measures for the 768x576 clip
SOURCE = (768, 576)
WARMUP, CHANGE_AT, WITHIN = 500, 800, 100
SETTINGS = MonitorSettings(warmup_frames=WARMUP)
MODEL = "1"
Observed = tuple[FrameQuality, list[Detection]]


@pytest.fixture(scope="module")
def clip(vtest_avi, tmp_path_factory) -> tuple[list[Observed], FrameQuality]:
    """Every frame's quality and detections, and frame 0's quality right after the last."""
    model = LocalModel(shared_file("models", "yolox_nano.onnx"), "yolox",
                      tmp_path_factory.mktemp("repo"))  # fmt: skip
    capture = cv2.VideoCapture(str(vtest_avi))
    meter, observed, first = QualityMeter(0.5), [], None
    while True:
        ok, image = capture.read()
        if not ok:
            break
        small = cv2.resize(image, SIZE, interpolation=cv2.INTER_AREA)
        first = small if first is None else first
        observed.append((meter.measure("cam", small), model.detect(image)))
    capture.release()
    return observed, meter.measure("cam", first)


def at(clip, t: int) -> Observed:
    observed, after_loop = clip
    quality, detections = observed[t % len(observed)]
    return (after_loop if t % len(observed) == 0 and t else quality), detections


def observe(monitor: CameraMonitor, t: int, frame: Observed):
    quality, detections = frame
    return monitor.observe(t, quality, MODEL, detections, SOURCE)


@pytest.fixture(scope="module")
def learned(clip) -> dict:
    monitor = CameraMonitor("cam", SETTINGS)
    for t in range(WARMUP):
        assert observe(monitor, t, at(clip, t)) is None
    return monitor.to_state()


def _moved(d: Detection, dx: float, dy: float) -> Detection:
    b = d.box
    box = BoundingBox(x1=b.x1 + dx, y1=b.y1 + dy, x2=b.x2 + dx, y2=b.y2 + dy)
    return Detection(box=box, score=d.score, class_id=d.class_id, class_name=d.class_name)


def _less_sure(detections: list[Detection], _: int) -> list[Detection]:
    return [
        Detection(box=d.box, score=d.score * 0.7, class_id=d.class_id, class_name=d.class_name)
        for d in detections
        if d.score * 0.7 >= 0.25
    ]


def _another_class(detections: list[Detection], _: int) -> list[Detection]:
    return [Detection(box=d.box, score=d.score, class_id=2, class_name="car") for d in detections]


def _jumping(detections: list[Detection], t: int) -> list[Detection]:
    """Every box a box-width away from where it was a frame ago: a tracker's id switches."""
    sign = 1 if t % 2 else -1
    return [_moved(d, sign * (d.box.x2 - d.box.x1), 0) for d in detections]


def _shrunk(detections: list[Detection], _: int) -> list[Detection]:
    """Boxes decoded at the wrong scale (an export whose input size the config misstates):
    0.4 of their width and height."""
    out = []
    for d in detections:
        b, w, h = d.box, (d.box.x2 - d.box.x1) * 0.3, (d.box.y2 - d.box.y1) * 0.3
        box = BoundingBox(x1=b.x1 + w, y1=b.y1 + h, x2=b.x2 - w, y2=b.y2 - h)
        out.append(Detection(box=box, score=d.score, class_id=d.class_id, class_name=d.class_name))
    return out


DEGRADATIONS: dict[str, Callable[[list[Detection], int], list[Detection]]] = {
    "less sure of everything": _less_sure,
    "every person called a car": _another_class,
    "boxes jumping frame to frame": _jumping,
    "boxes decoded too small": _shrunk,
}


def test_the_real_detections_of_the_unaltered_stream_open_no_episode_in_2500_frames(clip, learned):
    monitor = CameraMonitor.from_state("cam", SETTINGS, learned)
    centre = dict(zip(DETECTOR_SIGNALS, monitor.reference.centre[12:], strict=True))
    assert centre["mean_score"] > 0.25 and centre["log_detections"] > 1  # a busy scene
    for t in range(WARMUP, WARMUP + 2500):
        assert observe(monitor, t, at(clip, t)) is None, f"false alarm at {t}"


@pytest.mark.parametrize("degradation", DEGRADATIONS)
def test_a_model_going_wrong_on_unchanged_images_opens_an_episode_on_detector_signals(
    clip, learned, degradation
):
    monitor = CameraMonitor.from_state("cam", SETTINGS, learned)
    for t in range(WARMUP, CHANGE_AT):
        assert observe(monitor, t, at(clip, t)) is None, f"alarm at {t}"
    changes = []
    for t in range(CHANGE_AT, CHANGE_AT + WITHIN):
        quality, detections = at(clip, t)
        found = observe(monitor, t, (quality, DEGRADATIONS[degradation](detections, t)))
        if found is not None:
            changes.append((t - CHANGE_AT, found))
    assert changes, f"{degradation}: no episode within {WITHIN} frames"
    delay, first = changes[0]
    assert first.started and len(changes) == 1, changes
    signals = [e.name for e in first.evidence]
    assert set(signals) <= set(DETECTOR_SIGNALS), signals
    print(f"{degradation}: episode after {delay} frames on {signals}")


def _message(camera: str, t: int, frame: Observed, degraded: bool = False) -> Detections:
    """What inference publishes: a degraded frame names the fallback's model, whose version
    reads "1" like the primary's."""
    quality, detections = frame
    ref = FrameRef(camera_id=camera, frame_id=t, width=SOURCE[0], height=SOURCE[1])
    if not degraded:
        return Detections(ref=ref, model=ModelRef(name="yolox_nano", version=MODEL),
                          detections=detections, quality=quality)  # fmt: skip
    return Detections(ref=ref, model=ModelRef(name="yolox_nano_int8", version=MODEL),
                      detections=detections, quality=quality, degraded=True,
                      degraded_reason=DegradedReason.DEGRADED_REASON_LATENCY,
                      tier="int8")  # fmt: skip


def _darker(quality: FrameQuality) -> FrameQuality:
    darker = FrameQuality()
    darker.CopyFrom(quality)
    darker.brightness -= 30
    return darker


def test_a_degraded_frame_feeds_its_image_signals_and_not_its_detector_signals(
    clip, learned, local_redis
):
    """The fallback's fewer, less sure boxes are not the watched model drifting: they move no
    detector signal's sums, nor box churn's previous frame, and restart no reference; the same
    frame's image signals are tested as any frame's. The primary's next frame is then tested,
    on its detector signals, as if the degraded frames had never come."""
    camera = f"degraded-{uuid.uuid4().hex[:8]}"
    StateStore(local_redis, "monitor").save_many({camera: learned})
    handler, detector = MonitorHandler(local_redis, "drift", SETTINGS), ~IMAGE
    try:
        for t in range(WARMUP, WARMUP + 20):
            assert handler.handle(_message(camera, t, at(clip, t))) == []
        monitor = handler._monitor(camera)
        never_saw_them = CameraMonitor.from_state(camera, SETTINGS, monitor.to_state())
        fed_as_primary = CameraMonitor.from_state(camera, SETTINGS, monitor.to_state())

        for t in range(WARMUP + 20, WARMUP + 23):  # a darker image, and the fallback's boxes
            quality, detections = at(clip, t)
            frame = (_darker(quality), _less_sure(detections, t))
            assert handler.handle(_message(camera, t, frame, degraded=True)) == []
            observe(fed_as_primary, t, frame)

        assert monitor.reference.reference_id == never_saw_them.reference.reference_id
        assert monitor.last_point.frame_id == WARMUP + 22
        assert monitor.low[NAMES.index("brightness")] > 0
        for sums in ("high", "low"):
            mine = getattr(monitor, sums)
            np.testing.assert_array_equal(mine[IMAGE], getattr(fed_as_primary, sums)[IMAGE])
            np.testing.assert_array_equal(mine[detector], getattr(never_saw_them, sums)[detector])
        assert (fed_as_primary.statistic[detector] != never_saw_them.statistic[detector]).any()
        np.testing.assert_array_equal(monitor._previous_boxes, never_saw_them._previous_boxes)

        t = WARMUP + 23
        assert handler.handle(_message(camera, t, at(clip, t))) == []
        observe(never_saw_them, t, at(clip, t))
        np.testing.assert_array_equal(monitor.high[detector], never_saw_them.high[detector])
        np.testing.assert_array_equal(monitor.low[detector], never_saw_them.low[detector])
        values, expected = monitor.last_point.values, never_saw_them.last_point.values
        np.testing.assert_array_equal(values[detector], expected[detector])
        assert not np.isnan(values[NAMES.index("box_churn")])  # against the primary's last boxes
    finally:
        local_redis.delete(f"steadyeye:state:monitor:{camera}")


def test_a_reference_is_learned_from_the_frames_the_primary_answered(clip):
    """A warm-up takes no degraded frame, so the reference's detector signals are the primary's;
    nor does the fallback's own version start a new warm-up."""
    monitor = CameraMonitor("cam", SETTINGS)
    for t in range(WARMUP - 1):
        assert observe(monitor, t, at(clip, t)) is None
    for t in range(WARMUP - 1, WARMUP + 9):
        quality, detections = at(clip, t)
        monitor.observe(t, quality, "2", detections, SOURCE, degraded=True)
    assert monitor.reference is None and len(monitor.warmup) == WARMUP - 1

    assert observe(monitor, WARMUP + 9, at(clip, WARMUP + 9)) is None
    assert monitor.reference.reference_id == f"cam@{WARMUP + 9}/{MODEL}"
