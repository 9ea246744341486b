"""Tensors handed to Triton through system shared memory give exactly the detections the gRPC
path gives, batched requests give each frame its own detections, and the regions are released
on close (real Triton of the embedded stack)."""

from __future__ import annotations

import os
import time

import cv2
import numpy as np
import pytest
import tritonclient.grpc as triton
from opentelemetry.trace import INVALID_SPAN

from services import contract
from services.core.errors import PoisonMessage
from services.core.handler import Incoming
from services.core.payload_keys import READY
from services.inference.handler import InferenceHandler
from services.inference.settings import InferenceSettings
from services.inference.tiers import connect_tiers
from services.preprocess.letterbox import letterbox
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.frames_pb2 import ReadyFrame

pytestmark = pytest.mark.stack


def test_shared_memory_and_grpc_inputs_give_the_same_detections(stack, pipeline, bus_jpg):
    client = triton.InferenceServerClient(stack.triton_grpc)
    model = contract.fetch(client, stack.model.name, 60)
    image = cv2.imdecode(np.frombuffer(bus_jpg, np.uint8), cv2.IMREAD_COLOR)
    boxed = letterbox(image, model)
    ready = ReadyFrame(
        ref=FrameRef(camera_id="shm", frame_id=0, width=image.shape[1], height=image.shape[0]),
        model_name=model.name,
        tensor=pipeline.payloads.put(READY.key("shm", 0), boxed.image.tobytes()),
        input_width=model.input_width,
        input_height=model.input_height,
        scale=boxed.scale,
        pad_x=boxed.pad_x,
        pad_y=boxed.pad_y,
    )
    found = {}
    for shared in (False, True):
        settings = InferenceSettings(
            triton_url=stack.triton_grpc, model_name=model.name, shared_memory=shared
        )
        handler = InferenceHandler(
            connect_tiers(settings)[0], model, pipeline.payloads, "d", settings
        )
        try:
            (output,) = handler.handle(ready)
        finally:
            handler.close()
        found[shared] = [(d.class_name, round(d.score, 4)) for d in output.message.detections]

    assert found[True] == found[False]
    assert "person" in {name for name, _ in found[True]}
    regions = client.get_system_shared_memory_status(as_json=True).get("regions", {})
    client.close()
    ours = f"steadyeye-{os.getpid()}-"  # the stack's own inference service has regions too
    assert not [name for name in regions if name.startswith(ours)]


@pytest.mark.parametrize("shared", [False, True], ids=["grpc", "shared-memory"])
def test_frames_batched_into_one_request_get_the_detections_each_gets_alone(
    stack, pipeline, vtest_avi, shared
):
    """Six frames of a poll, one with a broken tensor: the five good ones go to Triton as a
    request of 4 and one of 1, and each gets exactly its own detections back."""
    client = triton.InferenceServerClient(stack.triton_grpc)
    model = contract.fetch(client, stack.model.name, 60)
    client.close()
    capture = cv2.VideoCapture(str(vtest_avi))
    frames = []
    for i in range(6):
        for _ in range(15):  # frames far enough apart to differ
            _, image = capture.read()
        boxed = letterbox(image, model)
        tensor = boxed.image.tobytes() if i != 2 else b"\0" * 10
        frames.append(
            ReadyFrame(
                ref=FrameRef(camera_id="batch", frame_id=i, width=768, height=576),
                model_name=model.name,
                tensor=pipeline.payloads.put(READY.key("batch", i), tensor),
                input_width=model.input_width,
                input_height=model.input_height,
                scale=boxed.scale,
                pad_x=boxed.pad_x,
                pad_y=boxed.pad_y,
            )
        )
    capture.release()
    settings = InferenceSettings(
        triton_url=stack.triton_grpc, model_name=model.name, shared_memory=shared, max_batch=4
    )
    handler = InferenceHandler(connect_tiers(settings)[0], model, pipeline.payloads, "d", settings)
    try:
        alone = [handler.handle_batch([Incoming(f, INVALID_SPAN)])[0] for f in frames]
        before = _settled(stack, model.name)
        batched = handler.handle_batch([Incoming(f, INVALID_SPAN) for f in frames])
        after = _requests_and_frames(stack, model.name)
    finally:
        handler.close()

    def boxes(result) -> list[tuple]:
        [output] = result
        return [(d.class_name, round(d.box.x1), round(d.box.y1)) for d in output.message.detections]

    assert isinstance(alone[2], PoisonMessage) and isinstance(batched[2], PoisonMessage)
    good = [i for i in range(6) if i != 2]
    assert [batched[i][0].message.ref.frame_id for i in good] == good
    assert [boxes(batched[i]) for i in good] == [boxes(alone[i]) for i in good]
    assert len({tuple(boxes(alone[i])) for i in good}) > 1  # the frames really differ
    # Triton's own counters (the stack's inference service was idle: _settled)
    assert (after[0] - before[0], after[1] - before[1]) == (2, 5), "requests, frames"


def _settled(stack, model_name: str) -> tuple[int, int]:
    """The counters once the stack's own pipeline is idle (the session's probe frame may still
    be on its way when this test runs first)."""
    counters = _requests_and_frames(stack, model_name)
    for _ in range(60):
        time.sleep(0.5)
        counters, earlier = _requests_and_frames(stack, model_name), counters
        if counters == earlier:
            break
    return counters


def _requests_and_frames(stack, model_name: str) -> tuple[int, int]:
    client = triton.InferenceServerClient(stack.triton_grpc)
    [stats] = client.get_inference_statistics(model_name, as_json=True)["model_stats"]
    client.close()
    return int(stats["inference_stats"]["success"]["count"]), int(stats["inference_count"])
