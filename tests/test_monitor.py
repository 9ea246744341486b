"""Drift monitoring on real footage: the sample clip, looped, learns a camera's reference; each
kind of change in front of the camera opens an episode within 100 frames, and the unaltered
stream opens none over 2,500 frames. The frame quality comes from preprocess's own meter."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from services.monitor.camera import CameraMonitor
from services.monitor.settings import MonitorSettings
from services.preprocess.quality import QualityMeter
from steadyeye.v1.common_pb2 import FrameQuality

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


def _rotate(image: np.ndarray, degrees: float = 10) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def _zoom(image: np.ndarray, factor: float = 1.5) -> np.ndarray:
    h, w = image.shape[:2]
    ch, cw = int(h / factor), int(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    return cv2.resize(image[top : top + ch, left : left + cw], (w, h))


def _jpeg(image: np.ndarray, quality: int = 5) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 1)


def _other_scene(bus: np.ndarray) -> Callable[[np.ndarray, int], np.ndarray]:
    """Another real scene, alive: a little shake and sensor noise frame to frame."""
    scene = cv2.resize(bus, (SIZE[0] + 20, SIZE[1] + 20))

    def frame(_: np.ndarray, t: int) -> np.ndarray:
        dx, dy = t % 7, (t * 3) % 5
        crop = scene[dy : dy + SIZE[1], dx : dx + SIZE[0]].astype(np.int16)
        noise = np.random.default_rng(t).integers(-4, 5, crop.shape)
        return np.clip(crop + noise, 0, 255).astype(np.uint8)

    return frame


ALTERATIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "darkened": lambda f, _: (f * 0.4).astype(np.uint8),
    "blurred": lambda f, _: cv2.GaussianBlur(f, (0, 0), 3),
    "rotated 10 degrees": lambda f, _: _rotate(f),
    "zoomed 1.5x": lambda f, _: _zoom(f),
    "lens covered": lambda f, _: np.full_like(f, 35),
    "fog": lambda f, _: cv2.addWeighted(f, 0.5, np.full_like(f, 220), 0.5, 0),
    "heavy JPEG": lambda f, _: _jpeg(f),
    "mirrored": lambda f, _: f[:, ::-1].copy(),
}


@pytest.mark.parametrize("change", [*ALTERATIONS, "another scene"])
def test_a_change_in_front_of_the_camera_opens_one_episode_within_100_frames(
    clip, learned, bus_jpg, change
):
    qualities, frames, _ = clip
    alter = ALTERATIONS.get(change) or _other_scene(
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
