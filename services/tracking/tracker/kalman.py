"""Constant-velocity Kalman filter over (cx, cy, aspect, h), batched over tracks.

State: (cx, cy, a, h, vcx, vcy, va, vh), a = w / h. The measurement is the first four. Noise
scales with the box height so that near (large) and far (small) objects are treated alike.
Every function takes and returns stacked arrays (n, 8) and (n, 8, 8): one numpy call per step
for all tracks is what keeps the tracker fast, not a Python loop per track.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from services.tracking.tracker.config import TrackerConfig

Array = npt.NDArray[np.float64]

NDIM = 4
# One step of constant velocity: position += velocity.
_MOTION = np.eye(2 * NDIM) + np.eye(2 * NDIM, k=NDIM)


def xyxy_to_xyah(boxes: Array) -> Array:
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return np.stack([boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w / np.maximum(h, 1e-12), h], axis=1)


def xyah_to_xyxy(xyah: Array) -> Array:
    w = xyah[:, 2] * xyah[:, 3]
    h = xyah[:, 3]
    cx, cy = xyah[:, 0], xyah[:, 1]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


class KalmanFilter:
    def __init__(self, config: TrackerConfig) -> None:
        self._wp = config.std_weight_position
        self._wv = config.std_weight_velocity
        self._sa = config.std_aspect
        self._sav = config.std_aspect_velocity
        self._sam = config.std_aspect_measurement

    def initiate(self, measurements: Array) -> tuple[Array, Array]:
        """New tracks from (n, 4) xyah measurements: zero velocity, wide velocity prior."""
        n = len(measurements)
        mean = np.concatenate([measurements, np.zeros((n, NDIM))], axis=1)
        h = measurements[:, 3]
        # The position is known from one detection; the velocity is not known at all.
        std = np.stack(
            [
                2 * self._wp * h,
                2 * self._wp * h,
                np.full(n, self._sa),
                2 * self._wp * h,
                10 * self._wv * h,
                10 * self._wv * h,
                np.full(n, self._sav),
                10 * self._wv * h,
            ],
            axis=1,
        )
        cov = _diag(std**2)
        return mean, cov

    def predict(self, mean: Array, cov: Array) -> tuple[Array, Array]:
        """One frame ahead. Callers step once per elapsed frame id, so a dropped frame still
        moves the box and widens the uncertainty as a delivered one would have."""
        h = mean[:, 3]
        n = len(mean)
        std = np.stack(
            [
                self._wp * h,
                self._wp * h,
                np.full(n, self._sa),
                self._wp * h,
                self._wv * h,
                self._wv * h,
                np.full(n, self._sav),
                self._wv * h,
            ],
            axis=1,
        )
        mean = mean @ _MOTION.T
        cov = _MOTION @ cov @ _MOTION.T + _diag(std**2)
        return mean, cov

    def update(self, mean: Array, cov: Array, measurements: Array) -> tuple[Array, Array]:
        """Correct (n, 8) states with their (n, 4) xyah measurements."""
        h = mean[:, 3]
        n = len(mean)
        std = np.stack([self._wp * h, self._wp * h, np.full(n, self._sam), self._wp * h], axis=1)
        # The observation matrix is [I 0], so projections are slices rather than products.
        innovation_cov = cov[:, :NDIM, :NDIM] + _diag(std**2)
        cross = cov[:, :, :NDIM]  # P H^T, (n, 8, 4)
        # K = P H^T S^-1; solve S K^T = H P instead of inverting S.
        gain = np.linalg.solve(innovation_cov, cross.transpose(0, 2, 1)).transpose(0, 2, 1)
        innovation = measurements - mean[:, :NDIM]
        new_mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        new_cov = cov - gain @ innovation_cov @ gain.transpose(0, 2, 1)
        return new_mean, new_cov


def _diag(values: Array) -> Array:
    n, d = values.shape
    out = np.zeros((n, d, d))
    idx = np.arange(d)
    out[:, idx, idx] = values
    return out
