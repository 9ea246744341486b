"""Letterboxing to the model's contract and mapping boxes back to source pixels."""

from __future__ import annotations

import numpy as np
import pytest

from services.contract import ModelContract
from services.inference.boxes import to_detections
from services.preprocess.letterbox import letterbox
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.frames_pb2 import ReadyFrame


def contract(side: str, size=(416, 416), pad=114) -> ModelContract:
    return ModelContract("m", "images", size[0], size[1], side, pad, ("person", "bus"), 8)


@pytest.mark.parametrize(
    ("source", "side", "scale", "pad"),
    [
        ((576, 768), "top_left", 416 / 768, (0, 0)),
        ((576, 768), "center", 416 / 768, (0, (416 - 312) // 2)),
        ((1080, 810), "top_left", 416 / 1080, (0, 0)),
        ((1080, 810), "center", 416 / 1080, ((416 - 312) // 2, 0)),
        ((416, 416), "center", 1.0, (0, 0)),
    ],
)
def test_letterbox_places_the_scaled_image_per_contract(source, side, scale, pad):
    image = np.full((*source, 3), 200, np.uint8)

    boxed = letterbox(image, contract(side))

    assert boxed.image.shape == (416, 416, 3) and boxed.image.dtype == np.uint8
    assert boxed.scale == pytest.approx(scale)
    assert (boxed.pad_x, boxed.pad_y) == pad
    h, w = boxed.resized.shape[:2]
    assert (w, h) == (int(source[1] * scale), int(source[0] * scale))
    assert (boxed.resized == 200).all()
    assert (boxed.image == 114).sum() == (416 * 416 - w * h) * 3


def test_boxes_map_back_to_source_pixels_and_clip():
    frame = ReadyFrame(ref=FrameRef(width=810, height=1080), scale=416 / 1080, pad_x=52, pad_y=0)
    s = frame.scale
    boxes = np.array(
        [[52 + 10 * s, 20 * s, 52 + 100 * s, 200 * s], [0, 0, 500, 500], [0, 0, 0, 0]], np.float32
    )
    scores = np.array([0.9, 0.5, 0.0], np.float32)
    classes = np.array([1, 0, 0], np.int32)

    detections = to_detections(frame, boxes, scores, classes, 2, contract("center"), 0.0)

    assert [d.class_name for d in detections] == ["bus", "person"]
    first = detections[0].box
    assert (first.x1, first.y1, first.x2, first.y2) == pytest.approx((10, 20, 100, 200), abs=1e-3)
    second = detections[1].box
    assert (second.x1, second.y1, second.x2, second.y2) == pytest.approx((0, 0, 810, 1080))


def test_min_score_filters_and_unknown_class_ids_keep_their_number():
    frame = ReadyFrame(ref=FrameRef(width=100, height=100), scale=1.0)
    boxes = np.zeros((2, 4), np.float32)

    detections = to_detections(
        frame,
        boxes,
        np.array([0.9, 0.2], np.float32),
        np.array([7, 0], np.int32),
        2,
        contract("top_left"),
        0.5,
    )

    assert [(d.class_id, d.class_name) for d in detections] == [(7, "7")]
