"""What can happen in front of a camera, as functions of (frame, frame index) -> frame: the
changes the drift monitor must notice (tests/test_monitor.py, scripts/drift-alterations.py).
Sizes are relative, so they alter a full frame and preprocess's small image alike."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Alteration = Callable[[np.ndarray, int], np.ndarray]


def _rotate(image: np.ndarray, degrees: float = 10) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def _zoom(image: np.ndarray, factor: float = 1.5) -> np.ndarray:
    h, w = image.shape[:2]
    ch, cw = int(h / factor), int(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    return cv2.resize(image[top : top + ch, left : left + cw], (w, h))


def _blur(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), 3 * image.shape[1] / 416)  # sigma 3 at 416 wide


def _jpeg(image: np.ndarray, quality: int = 5) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 1)


def other_scene(scene: np.ndarray) -> Alteration:
    """Another real scene, alive: a little shake and sensor noise frame to frame."""

    def frame(image: np.ndarray, t: int) -> np.ndarray:
        h, w = image.shape[:2]
        big = cv2.resize(scene, (w + 20, h + 20))
        dx, dy = t % 7, (t * 3) % 5
        crop = big[dy : dy + h, dx : dx + w].astype(np.int16)
        noise = np.random.default_rng(t).integers(-4, 5, crop.shape)
        return np.clip(crop + noise, 0, 255).astype(np.uint8)

    return frame


ALTERATIONS: dict[str, Alteration] = {
    "darkened": lambda f, _: (f * 0.4).astype(np.uint8),
    "blurred": lambda f, _: _blur(f),
    "rotated 10 degrees": lambda f, _: _rotate(f),
    "zoomed 1.5x": lambda f, _: _zoom(f),
    "lens covered": lambda f, _: np.full_like(f, 35),
    "fog": lambda f, _: cv2.addWeighted(f, 0.5, np.full_like(f, 220), 0.5, 0),
    "heavy JPEG": lambda f, _: _jpeg(f),
    "mirrored": lambda f, _: f[:, ::-1].copy(),
}
