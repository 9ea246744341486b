"""Preprocess's frame-quality measures on real footage: what the input_quality rule and the
frozen-frame counter read."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from services.preprocess.quality import QualityMeter


@pytest.fixture(scope="module")
def frame(vtest_avi) -> np.ndarray:
    capture = cv2.VideoCapture(str(vtest_avi))
    ok, image = capture.read()
    capture.release()
    assert ok
    return cv2.resize(image, (416, 312))  # what preprocess measures: the letterboxed area


def test_dark_and_blurred_frames_measure_lower_than_the_original(frame) -> None:
    original = QualityMeter(1.0).measure("cam", frame)
    dark = QualityMeter(1.0).measure("cam", (frame * 0.1).astype(np.uint8))
    blurred = QualityMeter(1.0).measure("cam", cv2.GaussianBlur(frame, (0, 0), 4))
    assert 60 < original.brightness < 200 and original.sharpness > 500
    assert dark.brightness < original.brightness / 5
    assert blurred.sharpness < original.sharpness / 10
    assert abs(blurred.brightness - original.brightness) < 2


@pytest.mark.parametrize(
    ("second", "frozen"),
    [
        ("the same frame", True),
        ("the same frame plus sensor noise of 0.5", True),
        ("the next frame", False),
    ],
)
def test_a_camera_repeating_its_frame_is_frozen(frame, vtest_avi, second: str, frozen: bool):
    capture = cv2.VideoCapture(str(vtest_avi))
    for _ in range(10):
        capture.read()
    nxt = cv2.resize(capture.read()[1], (416, 312))
    capture.release()
    noise = np.random.default_rng(0).normal(0, 0.5, frame.shape)
    images = {
        "the same frame": frame,
        "the same frame plus sensor noise of 0.5": np.clip(frame + noise, 0, 255).astype(np.uint8),
        "the next frame": nxt,
    }
    meter = QualityMeter(frozen_threshold=1.0)
    assert not meter.measure("cam", frame).frozen  # nothing to compare with yet
    assert meter.measure("cam", images[second]).frozen is frozen
    assert not meter.measure("other-cam", frame).frozen  # per camera


@pytest.mark.parametrize("shape", [(312, 416, 3), (50, 100, 3), (1, 1, 3), (1080, 1920, 3)])
def test_any_image_size_is_measured(shape: tuple[int, int, int]) -> None:
    quality = QualityMeter(1.0).measure("cam", np.full(shape, 128, np.uint8))
    assert quality.brightness == pytest.approx(128)
    assert quality.contrast == pytest.approx(0)


@pytest.mark.parametrize("seed", range(5))
def test_sharpness_is_the_laplacians_variance(frame, seed: int) -> None:
    """OpenCV's sums give numpy's variance of the float Laplacian (what it replaced)."""
    noisy = np.clip(frame + np.random.default_rng(seed).normal(0, 20, frame.shape), 0, 255)
    image = noisy.astype(np.uint8)
    grey = cv2.resize(
        cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (208, 156), interpolation=cv2.INTER_AREA
    )
    expected = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    assert QualityMeter(1.0).measure("cam", image).sharpness == pytest.approx(expected, rel=1e-6)


def _thumb(quality) -> np.ndarray:
    return np.frombuffer(quality.thumbnail, np.uint8).astype(float)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 1)


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


# (change, how the frame is altered, what must have moved: altered q against original o)
SCENE_CHANGES = [
    ("darkened", lambda f: (f * 0.1).astype(np.uint8),
     lambda q, o: q.dark_share > 0.5 > 0.05 > o.dark_share),
    ("overexposed", lambda f: cv2.convertScaleAbs(f, alpha=3.0),
     lambda q, o: q.bright_share > 0.3 > 0.05 > o.bright_share),
    ("lens covered", lambda f: np.full_like(f, 40),
     lambda q, o: q.flat_cell_share == 1 and o.flat_cell_share < 0.05),
    ("blurred", lambda f: cv2.GaussianBlur(f, (0, 0), 4),
     lambda q, o: q.fine_flat_share > 3 * o.fine_flat_share),
    ("heavy JPEG", lambda f: _jpeg(f, 3),
     lambda q, o: q.fine_flat_share > 3 * o.fine_flat_share),
    ("grey", _grey,
     lambda q, o: q.saturation < 1 < o.saturation and list(q.hue_hist) == [0.125] * 8),
    ("mirrored", lambda f: f[:, ::-1].copy(),
     lambda q, o: np.corrcoef(_thumb(q), _thumb(o))[0, 1] < 0.8 and q.edge_grid != o.edge_grid),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "alter", "moved"), SCENE_CHANGES, ids=[c[0] for c in SCENE_CHANGES]
)
def test_each_kind_of_scene_change_moves_its_signal(frame, change, alter, moved) -> None:
    original = QualityMeter(1.0).measure("cam", frame)
    altered = QualityMeter(1.0).measure("cam", alter(frame))
    assert moved(altered, original), change


def test_the_layout_signals_have_a_fixed_size_and_the_hue_shares_sum_to_one(frame) -> None:
    for image in (frame, np.zeros((1, 1, 3), np.uint8), np.zeros((1080, 1920, 3), np.uint8)):
        quality = QualityMeter(1.0).measure("cam", image)
        assert (len(quality.thumbnail), len(quality.edge_grid)) == (16 * 12, 8 * 6)
        assert sum(quality.hue_hist) == pytest.approx(1)


def test_motion_is_the_mean_change_from_the_cameras_previous_frame(frame) -> None:
    meter = QualityMeter(1.0)
    assert meter.measure("cam", frame).motion == 0  # nothing to compare with yet
    assert meter.measure("cam", frame).motion == 0
    assert meter.measure("cam", np.clip(frame.astype(int) + 10, 0, 255).astype(np.uint8)).motion > 5
