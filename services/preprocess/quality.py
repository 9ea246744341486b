"""Frame quality: brightness, contrast, sharpness and frozen-frame detection per camera.

Measured on a small grey copy, reduced by the largest whole factor that keeps it at least 160 px
wide (208 px for a 416 px input): a whole-factor area reduction is OpenCV's fast path, 8x
cheaper than reducing to exactly 160 px. The sums are OpenCV's too: an int16 Laplacian and its
variance from two SIMD reductions cost 37 us where a float Laplacian and numpy's var() cost
123 us, for the same figure. About 0.19 ms per frame in all.
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
        previous = self._previous.get(camera_id)
        frozen = (
            previous is not None
            and previous.shape == grey.shape
            and cv2.mean(cv2.absdiff(previous, grey))[0] < self._frozen_threshold
        )
        self._previous[camera_id] = grey
        return FrameQuality(
            brightness=float(mean[0, 0]),
            contrast=float(std[0, 0]),
            sharpness=_variance(cv2.Laplacian(grey, cv2.CV_16S)),
            frozen=frozen,
        )


def _variance(values: np.ndarray) -> float:
    """E[x²] - E[x]², both sums in OpenCV (an int16 3x3 Laplacian of uint8 cannot overflow)."""
    mean = cv2.sumElems(values)[0] / values.size
    return max(0.0, cv2.norm(values, cv2.NORM_L2SQR) / values.size - mean * mean)
