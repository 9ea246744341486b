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
_DIAG = np.arange(2 * NDIM)
_DIAG4 = np.arange(NDIM)
_TINY = np.finfo(np.float64).tiny


def xyxy_to_xyah(boxes: Array) -> Array:
    wh = boxes[:, 2:] - boxes[:, :2]
    h = wh[:, 1:]
    return np.concatenate([boxes[:, :2] + wh / 2, wh[:, :1] / np.maximum(h, _TINY), h], axis=1)


def xyah_to_xyxy(xyah: Array) -> Array:
    h = xyah[:, 3:]
    half = np.concatenate([xyah[:, 2:3] * h, h], axis=1) / 2
    return np.concatenate([xyah[:, :2] - half, xyah[:, :2] + half], axis=1)


class KalmanFilter:
    def __init__(self, config: TrackerConfig) -> None:
        wp, wv = config.std_weight_position, config.std_weight_velocity
        sa, sav = config.std_aspect, config.std_aspect_velocity
        # Each std is `height * scale + offset`: position and size terms scale with the box
        # height, aspect terms are constant because the aspect ratio is unitless.
        self._init_scale = np.array([2 * wp, 2 * wp, 0, 2 * wp, 10 * wv, 10 * wv, 0, 10 * wv])
        self._init_offset = np.array([0, 0, sa, 0, 0, 0, sav, 0])
        self._process_scale = np.array([wp, wp, 0, wp, wv, wv, 0, wv])
        self._process_offset = np.array([0, 0, sa, 0, 0, 0, sav, 0])
        self._measure_scale = np.array([wp, wp, 0, wp])
        self._measure_offset = np.array([0, 0, config.std_aspect_measurement, 0])

    def initiate(self, measurements: Array) -> tuple[Array, Array]:
        """New tracks from (n, 4) xyah measurements: zero velocity, wide velocity prior."""
        n = len(measurements)
        mean = np.concatenate([measurements, np.zeros((n, NDIM))], axis=1)
        # Wider than the process noise: the position comes from one detection, the velocity
        # is not known at all.
        std = measurements[:, 3:4] * self._init_scale + self._init_offset
        cov = np.zeros((n, 2 * NDIM, 2 * NDIM))
        cov[:, _DIAG, _DIAG] = std**2
        return mean, cov

    def predict(self, mean: Array, cov: Array) -> tuple[Array, Array]:
        """One frame ahead. Callers step once per elapsed frame id, so a dropped frame still
        moves the box and widens the uncertainty as a delivered one would have."""
        std = mean[:, 3:4] * self._process_scale + self._process_offset
        mean = mean @ _MOTION.T
        cov = _MOTION @ cov @ _MOTION.T
        cov[:, _DIAG, _DIAG] += std**2
        return mean, cov

    def update(self, mean: Array, cov: Array, measurements: Array) -> tuple[Array, Array]:
        """Correct (n, 8) states with their (n, 4) xyah measurements."""
        std = mean[:, 3:4] * self._measure_scale + self._measure_offset
        # The observation matrix is [I 0], so projections are slices rather than products.
        innovation_cov = cov[:, :NDIM, :NDIM].copy()
        innovation_cov[:, _DIAG4, _DIAG4] += std**2
        cross = cov[:, :, :NDIM]  # P H^T, (n, 8, 4)
        # K = P H^T S^-1; solve S K^T = H P instead of inverting S.
        gain = np.linalg.solve(innovation_cov, cross.transpose(0, 2, 1)).transpose(0, 2, 1)
        innovation = measurements - mean[:, :NDIM]
        new_mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        new_cov = cov - gain @ innovation_cov @ gain.transpose(0, 2, 1)
        return new_mean, new_cov
