"""What the monitor compares, per frame (docs/design/drift-monitor.md):

- twelve image signals from the frame quality preprocess measures;
- eight detector-output signals from the frame's detections: how many, how sure, how close to
  the score threshold, which classes, how big and where the boxes are, and how many boxes have
  no partner in the previous frame (what a tracker sees as churn: new identities, switches).

On the research footage the image signals alone find every image alteration; the detector
signals are what sees a model that degrades on unchanged images (a new model version, a
scene the model never learned)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from steadyeye.v1.common_pb2 import FrameQuality
from steadyeye.v1.detections_pb2 import Detection

# name: (only an increase is drift, the smallest scale the reference may have). The floors are
# each signal's resolution: a warm-up with almost no spread must not make noise look like drift.
IMAGE_SIGNALS: dict[str, tuple[bool, float]] = {
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
DETECTOR_SIGNALS: dict[str, tuple[bool, float]] = {
    "log_detections": (False, 0.1),  # log(1 + boxes)
    "mean_score": (False, 0.01),
    "near_threshold_share": (False, 0.02),  # boxes scoring within NEAR of the threshold
    "log_box_size": (False, 0.05),  # median log(sqrt(box area) / frame diagonal)
    "box_x": (False, 0.01),  # mean box centre, as a share of the width
    "box_y": (False, 0.01),
    "box_churn": (False, 0.02),  # boxes with no IoU >= 0.3 partner in the previous frame
    "class_dist": (True, 0.02),  # half the L1 distance of the class mix to the reference's
}
SIGNALS = {**IMAGE_SIGNALS, **DETECTOR_SIGNALS}
NAMES = tuple(SIGNALS)
UPWARD = np.array([up for up, _ in SIGNALS.values()])
FLOORS = np.array([floor for _, floor in SIGNALS.values()])
IMAGE = np.array([name in IMAGE_SIGNALS for name in NAMES])  # which of NAMES are image signals
IMAGE_SCALARS = 9  # the image signals before the three distances
DETECTOR_SCALARS = 7  # the detector signals before class_dist
SCALARS = IMAGE_SCALARS + DETECTOR_SCALARS
NEAR = 0.10  # "near the threshold": within this of the model's score threshold
CHURN_IOU = 0.3


@dataclass(frozen=True)
class Frame:
    """One frame's raw signals: the scalars (image, then detector; NaN where a frame has no box
    to measure), and the layouts the distances are taken from."""

    scalars: np.ndarray  # [SCALARS]
    hue: np.ndarray  # [8]
    edges: np.ndarray  # [48]
    thumbnail: np.ndarray  # [192]
    classes: dict[int, int]  # boxes per class id

    @classmethod
    def of(
        cls,
        quality: FrameQuality,
        detections: list[Detection] | None = None,
        size: tuple[int, int] = (0, 0),
        previous_boxes: np.ndarray | None = None,
        near_below: float = 0.25 + NEAR,
    ) -> Frame:
        """`size` is the source frame's (width, height); `previous_boxes` the last frame's
        boxes (boxes_of) for churn; scores below `near_below` count as near the threshold."""
        image = [
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
        detections = detections or []
        boxes = boxes_of(detections, size)
        scalars = np.array([*image, *_detector(detections, boxes, previous_boxes, near_below)])
        hue = np.array(quality.hue_hist, float) if len(quality.hue_hist) == 8 else np.zeros(8)
        classes: dict[int, int] = {}
        for d in detections:
            classes[d.class_id] = classes.get(d.class_id, 0) + 1
        return cls(
            scalars, hue, _bytes(quality.edge_grid, 48), _bytes(quality.thumbnail, 192), classes
        )

    def vector(self, layout: Layout) -> np.ndarray:
        return np.concatenate(
            [
                self.scalars[:IMAGE_SCALARS],
                [
                    0.5 * float(np.abs(self.hue - layout.hue).sum()),
                    _correlation_distance(self.edges, layout.edges),
                    _correlation_distance(self.thumbnail, layout.thumbnail),
                ],
                self.scalars[IMAGE_SCALARS:],
                [_class_distance(self.classes, layout.classes)],
            ]
        )


@dataclass(frozen=True)
class Layout:
    """The reference's colour, edges, picture and class mix: mean hue and class shares, median
    grids."""

    hue: np.ndarray
    edges: np.ndarray
    thumbnail: np.ndarray
    classes: dict[int, float]

    @classmethod
    def learn(cls, frames: list[Frame]) -> Layout:
        counts: dict[int, int] = {}
        for f in frames:
            for c, n in f.classes.items():
                counts[c] = counts.get(c, 0) + n
        total = sum(counts.values())
        return cls(
            np.mean([f.hue for f in frames], 0),
            np.median([f.edges for f in frames], 0),
            np.median([f.thumbnail for f in frames], 0),
            {c: n / total for c, n in sorted(counts.items())},
        )


def boxes_of(detections: list[Detection], size: tuple[int, int]) -> np.ndarray:
    """[n, 4] boxes as shares of the frame (x1, y1, x2, y2), so cameras of any size compare."""
    width, height = size
    if not detections or not width or not height:
        return np.zeros((0, 4))
    xy = np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in detections], float)
    return xy / (width, height, width, height)


def _detector(
    detections: list[Detection], boxes: np.ndarray, previous: np.ndarray | None, near_below: float
) -> list[float]:
    nan = float("nan")
    if not detections:
        return [0.0, *[nan] * (DETECTOR_SCALARS - 1)]
    scores = np.array([d.score for d in detections])
    near = float(np.mean(scores < near_below))
    if len(boxes):
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        size = float(np.median(np.log(np.sqrt(np.maximum(w * h, 1e-8) / 2))))
        x, y = float(np.mean(boxes[:, [0, 2]])), float(np.mean(boxes[:, [1, 3]]))
        churn = nan if previous is None else float(np.mean(_unmatched(boxes, previous)))
    else:
        size = x = y = churn = nan
    return [float(np.log1p(len(detections))), float(scores.mean()), near, size, x, y, churn]


def _unmatched(boxes: np.ndarray, previous: np.ndarray) -> np.ndarray:
    if not len(previous):
        return np.ones(len(boxes), bool)
    top_left = np.maximum(boxes[:, None, :2], previous[None, :, :2])
    bottom_right = np.minimum(boxes[:, None, 2:], previous[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    area_prev = np.prod(previous[:, 2:] - previous[:, :2], axis=1)
    iou = inter / np.maximum(area[:, None] + area_prev[None, :] - inter, 1e-12)
    return iou.max(axis=1) < CHURN_IOU


def _class_distance(classes: dict[int, int], reference: dict[int, float]) -> float:
    total = sum(classes.values())
    if not total or not reference:
        return float("nan")
    ids = set(classes) | set(reference)
    return 0.5 * sum(abs(classes.get(c, 0) / total - reference.get(c, 0.0)) for c in ids)


def _bytes(data: bytes, size: int) -> np.ndarray:
    values = np.frombuffer(data, np.uint8).astype(float)
    return values if len(values) == size else np.zeros(size)  # a producer without the field


def _correlation_distance(x: np.ndarray, reference: np.ndarray) -> float:
    """1 - Pearson correlation: 0 for the same picture whatever its exposure, up to 2."""
    xc, rc = x - x.mean(), reference - reference.mean()
    denominator = float(np.sqrt((xc @ xc) * (rc @ rc)))
    return 1.0 - float(xc @ rc) / denominator if denominator > 1e-9 else 1.0
