"""Triton's letterboxed-pixel outputs -> Detection messages in source-image pixels."""

from __future__ import annotations

import numpy as np

from services.contract import ModelContract
from steadyeye.v1.common_pb2 import BoundingBox
from steadyeye.v1.detections_pb2 import Detection
from steadyeye.v1.frames_pb2 import ReadyFrame


def to_detections(
    frame: ReadyFrame,
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    count: int,
    contract: ModelContract,
    min_score: float,
    below: float = float("inf"),
) -> list[Detection]:
    """The model's boxes scoring in [min_score, below), in source pixels."""
    keep = (scores[:count] >= min_score) & (scores[:count] < below)
    boxes, scores, classes = boxes[:count][keep], scores[:count][keep], classes[:count][keep]
    # Undo the letterbox: subtract the padding, divide by the scale, clip to the source frame.
    xy = (boxes.reshape(-1, 2, 2) - (frame.pad_x, frame.pad_y)) / frame.scale
    xy = np.clip(xy, 0, (frame.ref.width, frame.ref.height)).reshape(-1, 4)
    names = contract.class_names
    return [
        Detection(
            box=BoundingBox(x1=x1, y1=y1, x2=x2, y2=y2),
            score=float(score),
            class_id=int(cls),
            class_name=names[cls] if 0 <= cls < len(names) else str(cls),
        )
        for (x1, y1, x2, y2), score, cls in zip(xy.tolist(), scores, classes.tolist(), strict=True)
    ]
