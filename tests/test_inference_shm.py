"""Tensors handed to Triton through system shared memory give exactly the detections the gRPC
path gives, and the regions are released on close (real Triton of the embedded stack)."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import tritonclient.grpc as triton

from services import contract
from services.inference.handler import InferenceHandler
from services.inference.settings import InferenceSettings
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
        tensor=pipeline.payloads.put("test:shm:0", boxed.image.tobytes()),
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
            triton.InferenceServerClient(stack.triton_grpc), model, pipeline.payloads, "d", settings
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
