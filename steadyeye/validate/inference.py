"""One frame through one served model, as the services send it: letterboxed, one gRPC round
trip at batch 1, the detections back in source pixels."""

from __future__ import annotations

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from services.inference.one_frame import infer_image
from services.rollout.agreement import FrameDetections
from steadyeye.validate.result import Side
from steadyeye.validate.server import ServingError


class CandidateFailed(Exception):
    """Triton loaded the candidate but could not run it on a frame: a failed validation."""


def infer(
    client: grpcclient.InferenceServerClient, side: Side, image: np.ndarray
) -> tuple[float, FrameDetections]:
    """(round trip in ms, every detection returned); records the version that answered."""
    try:
        answer = infer_image(client, side.contract, image, side.version, timeout_s=60)
    except InferenceServerException as exc:
        # A candidate that cannot run fails the validation; a failing reference stops it.
        if side.role == "candidate":
            raise CandidateFailed(f"Triton could not run it: {exc}") from None
        raise ServingError(f"the serving model {side.name} failed: {exc}") from None
    side.served_version = answer.version
    return answer.elapsed_ms, FrameDetections.of(answer.detections)


def interleaved(index: int, reference: Side, candidate: Side) -> tuple[Side, Side]:
    """Who goes first on frame `index`: alternating, so neither always runs on a cooler cache."""
    return (reference, candidate) if index % 2 == 0 else (candidate, reference)
