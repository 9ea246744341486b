"""Thresholds for a camera's CUSUM tests, from its own warm-up.

Video frames are not independent: an i.i.d. bootstrap of the warm-up sets thresholds about 20x
too low (docs/design/drift-monitor.md). A stationary block bootstrap (blocks of ~4 s, every
signal resampled together) keeps the frame-to-frame correlation; the threshold per signal is
the one whose simulated run between false alarms reaches the camera's target divided among its
signals, never below a floor that asks a change to persist.
"""

from __future__ import annotations

import numpy as np

STREAMS, STREAM_FRAMES = 200, 2500  # 500,000 simulated frames: ~1 s of CPU, once per camera
MEAN_BLOCK = 40
GRID = np.unique(np.round(np.geomspace(1, 300, 30), 1))


def thresholds(
    z: np.ndarray, upward: np.ndarray, allowance: float, ert_frames: int, floor: float
) -> np.ndarray:
    """Per signal (columns of the warm-up's clipped z), the CUSUM threshold for `ert_frames`
    expected frames between false alarms of the camera as a whole."""
    rng = np.random.default_rng(0)  # the same warm-up always gives the same thresholds
    streams = _block_bootstrap(z, rng)
    alarms = _alarms(streams, upward, allowance)
    target = ert_frames * z.shape[1]  # Bonferroni: the camera's rate, not each signal's
    return np.array([max(_threshold(row, target), floor) for row in alarms])


def _block_bootstrap(z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[STREAMS, STREAM_FRAMES, signals]: circular blocks of geometric length."""
    n = len(z)
    index = np.empty((STREAMS, STREAM_FRAMES), np.int64)
    for s in range(STREAMS):
        t = 0
        while t < STREAM_FRAMES:
            length = min(int(rng.geometric(1 / MEAN_BLOCK)), STREAM_FRAMES - t)
            index[s, t : t + length] = (rng.integers(n) + np.arange(length)) % n
            t += length
    return z[index]


def _alarms(streams: np.ndarray, upward: np.ndarray, allowance: float) -> np.ndarray:
    """Alarms (restarting after each) per signal and threshold in GRID: [signals, len(GRID)]."""
    count, _, signals = streams.shape
    high = np.zeros((count, signals, len(GRID)))
    low = np.zeros_like(high)
    alarms = np.zeros((signals, len(GRID)))
    grid, up = GRID[None, None, :], upward[None, :, None]
    for t in range(streams.shape[1]):
        zt = streams[:, t, :, None]
        high = np.maximum(0.0, high + zt - allowance)
        low = np.where(up, 0.0, np.maximum(0.0, low - zt - allowance))
        fired = (high > grid) | (low > grid)
        alarms += fired.sum(0)
        high[fired] = 0.0
        low[fired] = 0.0
    return alarms


def _threshold(alarms: np.ndarray, target: float) -> float:
    """Where the simulated run length frames/alarms(h) reaches `target`: log run length is
    fitted linearly in h over the tail that still has alarms and extrapolated; with too few
    alarms to fit, the smallest h that had none."""
    frames = STREAMS * STREAM_FRAMES
    enough = alarms >= 8
    if enough.sum() >= 2:
        slope, intercept = np.polyfit(GRID[enough][-4:], np.log(frames / alarms[enough][-4:]), 1)
        h = (np.log(target) - intercept) / slope if slope > 0 else GRID[-1]
        too_often = GRID[(alarms > 0) & (frames / np.maximum(alarms, 1) < target)]
        h = max(h, too_often.max() if len(too_often) else -np.inf)
    else:
        quiet = GRID[alarms == 0]
        h = quiet.min() if len(quiet) else GRID[-1]
    return float(min(h, GRID[-1]))
