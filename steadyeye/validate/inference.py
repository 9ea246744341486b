"""One frame through one served model, as the services send it: letterboxed, one gRPC round
trip at batch 1, the detections back in source pixels."""

from __future__ import annotations

import time

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from services.inference.boxes import to_detections
from services.preprocess.letterbox import letterbox
from services.rollout.agreement import FrameDetections
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.frames_pb2 import ReadyFrame
from steadyeye.validate.result import Side
from steadyeye.validate.server import ServingError


class CandidateFailed(Exception):
    """Triton loaded the candidate but could not run it on a frame: a failed validation."""


def infer(
    client: grpcclient.InferenceServerClient, side: Side, image: np.ndarray
) -> tuple[float, FrameDetections]:
    """(round trip in ms, every detection returned); records the version that answered."""
    boxed = letterbox(image, side.contract)
    request = grpcclient.InferInput(side.contract.input_name, [1, *boxed.image.shape], "UINT8")
    request.set_data_from_numpy(boxed.image[None])
    started = time.perf_counter()
    try:
        result = client.infer(side.name, [request], model_version=side.version, client_timeout=60)
    except InferenceServerException as exc:
        # A candidate that cannot run fails the validation; a failing reference stops it.
        if side.role == "candidate":
            raise CandidateFailed(f"Triton could not run it: {exc}") from None
        raise ServingError(f"the serving model {side.name} failed: {exc}") from None
    elapsed_ms = (time.perf_counter() - started) * 1000
    side.served_version = result.get_response().model_version
    boxes, scores, classes, count = (
        result.as_numpy(n)[0] for n in ("boxes", "scores", "classes", "count")
    )
    height, width = image.shape[:2]
    frame = ReadyFrame(
        ref=FrameRef(width=width, height=height),
        scale=boxed.scale,
        pad_x=boxed.pad_x,
        pad_y=boxed.pad_y,
    )
    found = to_detections(frame, boxes, scores, classes, int(count[0]), side.contract, 0.0)
    detections = FrameDetections(
        np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in found], np.float32).reshape(
            -1, 4
        ),
        np.array([d.score for d in found], np.float32),
        np.array([d.class_id for d in found], np.int64),
    )
    return elapsed_ms, detections


def interleaved(index: int, reference: Side, candidate: Side) -> tuple[Side, Side]:
    """Who goes first on frame `index`: alternating, so neither always runs on a cooler cache."""
    return (reference, candidate) if index % 2 == 0 else (candidate, reference)
