"""What the monitor compares, per frame: twelve image signals from the frame quality preprocess
measures (docs/design/drift-monitor.md). Detector outputs stay out for now: on the research
footage they added no detection power and wander with the crowd."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from steadyeye.v1.common_pb2 import FrameQuality

# name: (only an increase is drift, the smallest scale the reference may have). The floors are
# each signal's resolution: a warm-up with almost no spread must not make noise look like drift.
SIGNALS: dict[str, tuple[bool, float]] = {
    "brightness": (False, 1.0),
    "contrast": (False, 1.0),
    "log_sharpness": (False, 0.05),
    "log_motion": (False, 0.10),
    "saturation": (False, 1.0),
    "dark_share": (False, 0.005),
    "bright_share": (False, 0.005),
    "flat_cell_share": (False, 0.02),
    "fine_flat_share": (False, 0.005),
    "hue_dist": (True, 0.01),  # distances to the reference's own layout: 0 is the reference
    "edge_dist": (True, 0.01),
    "thumb_dist": (True, 0.01),
}
NAMES = tuple(SIGNALS)
UPWARD = np.array([up for up, _ in SIGNALS.values()])
FLOORS = np.array([floor for _, floor in SIGNALS.values()])
SCALARS = 9  # the signals before the three distances


@dataclass(frozen=True)
class Frame:
    """One frame's raw signals: the scalars, and the layouts the distances are taken from."""

    scalars: np.ndarray  # [SCALARS]
    hue: np.ndarray  # [8]
    edges: np.ndarray  # [48]
    thumbnail: np.ndarray  # [192]

    @classmethod
    def of(cls, quality: FrameQuality) -> Frame:
        scalars = np.array(
            [
                quality.brightness,
                quality.contrast,
                np.log(quality.sharpness + 1.0),
                np.log(quality.motion + 0.25),
                quality.saturation,
                quality.dark_share,
                quality.bright_share,
                quality.flat_cell_share,
                quality.fine_flat_share,
            ]
        )
        hue = np.array(quality.hue_hist, float) if len(quality.hue_hist) == 8 else np.zeros(8)
        return cls(scalars, hue, _bytes(quality.edge_grid, 48), _bytes(quality.thumbnail, 192))

    def vector(self, layout: Layout) -> np.ndarray:
        return np.concatenate(
            [
                self.scalars,
                [
                    0.5 * float(np.abs(self.hue - layout.hue).sum()),
                    _correlation_distance(self.edges, layout.edges),
                    _correlation_distance(self.thumbnail, layout.thumbnail),
                ],
            ]
        )


@dataclass(frozen=True)
class Layout:
    """The reference's colour, edges and picture: mean hue shares, median grids."""

    hue: np.ndarray
    edges: np.ndarray
    thumbnail: np.ndarray

    @classmethod
    def learn(cls, frames: list[Frame]) -> Layout:
        return cls(
            np.mean([f.hue for f in frames], 0),
            np.median([f.edges for f in frames], 0),
            np.median([f.thumbnail for f in frames], 0),
        )


def _bytes(data: bytes, size: int) -> np.ndarray:
    values = np.frombuffer(data, np.uint8).astype(float)
    return values if len(values) == size else np.zeros(size)  # a producer without the field


def _correlation_distance(x: np.ndarray, reference: np.ndarray) -> float:
    """1 - Pearson correlation: 0 for the same picture whatever its exposure, up to 2."""
    xc, rc = x - x.mean(), reference - reference.mean()
    denominator = float(np.sqrt((xc @ xc) * (rc @ rc)))
    return 1.0 - float(xc @ rc) / denominator if denominator > 1e-9 else 1.0
