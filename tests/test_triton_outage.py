"""While Triton is unreachable nothing is committed or lost, and inference reports unready."""

from __future__ import annotations

import pytest

from steadyeye.v1.detections_pb2 import Detections
from tests.conftest import readyz, wait_for

pytestmark = pytest.mark.stack


def test_frames_sent_while_triton_is_down_arrive_after_it_returns(
    stack, pipeline, camera_id, bus_jpg
):
    triton, port = stack.processes["triton"], stack.service_ports["inference"]
    triton.stop()
    try:
        for frame_id in range(3):
            pipeline.send_frame(camera_id, frame_id, bus_jpg)

        assert wait_for(lambda: readyz(port) == 503, 30), "inference stayed ready without Triton"
        early = pipeline.read_messages(pipeline.topics.detections, Detections, camera_id, 1, 3)
        assert early == []
    finally:
        triton.start()

    results = pipeline.read_messages(pipeline.topics.detections, Detections, camera_id, 3, 90)
    assert sorted(r.ref.frame_id for r in results) == [0, 1, 2]
    assert wait_for(lambda: readyz(port) == 200, 30)
    assert pipeline.dead_letters(camera_id, 1, timeout_s=1) == []
