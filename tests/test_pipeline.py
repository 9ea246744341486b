"""The detection pipeline end to end on the real embedded stack."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from steadyeye.v1.detections_pb2 import Detections

pytestmark = pytest.mark.stack


def test_bus_photo_yields_a_bus_and_people_in_source_pixels(pipeline, camera_id, bus_jpg):
    pipeline.send_frame(camera_id, 0, bus_jpg)

    [result] = pipeline.read_messages(pipeline.topics.detections, Detections, camera_id, 1)

    assert (result.ref.width, result.ref.height) == (810, 1080)
    confident = [d for d in result.detections if d.score >= 0.3]
    names = [d.class_name for d in confident]
    assert names.count("bus") == 1
    assert names.count("person") >= 3
    bus = next(d for d in confident if d.class_name == "bus")
    # The bus spans most of the photo's width in source pixels (not the 416 px model input).
    assert bus.box.x2 - bus.box.x1 > 600
    assert 0 <= bus.box.x1 < bus.box.x2 <= 810 and 0 <= bus.box.y1 < bus.box.y2 <= 1080
    assert result.model.name == "yolox_nano"


def test_raw_bgr_frames_give_the_same_detections_as_jpeg(pipeline, camera_id, bus_jpg):
    image = cv2.imdecode(np.frombuffer(bus_jpg, np.uint8), cv2.IMREAD_COLOR)
    pipeline.send_frame(camera_id, 0, bus_jpg)
    pipeline.send_frame(camera_id, 1, image)

    results = pipeline.read_messages(pipeline.topics.detections, Detections, camera_id, 2)

    by_id = {r.ref.frame_id: r for r in results}
    jpeg, raw = by_id[0].detections, by_id[1].detections
    assert [d.class_name for d in jpeg] == [d.class_name for d in raw]
    assert np.allclose([d.box.x1 for d in jpeg], [d.box.x1 for d in raw], atol=0.5)
