"""Frame quality: brightness, contrast, sharpness and frozen-frame detection per camera.

Measured on a small grey copy, reduced by the largest whole factor that keeps it at least 160 px
wide (208 px for a 416 px input): a whole-factor area reduction is OpenCV's fast path, 8x
cheaper than reducing to exactly 160 px (0.06 against 0.46 ms).
"""

from __future__ import annotations

import cv2
import numpy as np

from steadyeye.v1.common_pb2 import FrameQuality

_MEASURE_WIDTH = 160


class QualityMeter:
    def __init__(self, frozen_threshold: float) -> None:
        self._frozen_threshold = frozen_threshold
        self._previous: dict[str, np.ndarray] = {}

    def measure(self, camera_id: str, image: np.ndarray) -> FrameQuality:
        height, width = image.shape[:2]
        k = max(1, min(width // _MEASURE_WIDTH, height))
        grey = cv2.cvtColor(image[: height - height % k, : width - width % k], cv2.COLOR_BGR2GRAY)
        if k > 1:
            grey = cv2.resize(grey, None, fx=1 / k, fy=1 / k, interpolation=cv2.INTER_AREA)
        mean, std = cv2.meanStdDev(grey)
        sharpness = cv2.Laplacian(grey, cv2.CV_32F).var()
        previous = self._previous.get(camera_id)
        frozen = (
            previous is not None
            and previous.shape == grey.shape
            and float(cv2.absdiff(previous, grey).mean()) < self._frozen_threshold
        )
        self._previous[camera_id] = grey
        return FrameQuality(
            brightness=float(mean[0, 0]),
            contrast=float(std[0, 0]),
            sharpness=float(sharpness),
            frozen=frozen,
        )
