"""One image through a served model as the services send it: letterboxed to the contract, one
request at batch 1 naming its version, the detections back in source pixels. For operators'
commands and checks (`monitor pin`, `model validate`), not the service's batched path."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import tritonclient.grpc as triton

from services.contract import ModelContract
from services.inference.boxes import to_detections
from services.preprocess.letterbox import Letterboxed, letterbox
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.detections_pb2 import Detection
from steadyeye.v1.frames_pb2 import ReadyFrame

OUTPUTS = ("boxes", "scores", "classes", "count")


@dataclass
class Answer:
    detections: list[Detection]  # scoring >= the min_score asked for, in source pixels
    version: str  # the version that answered
    boxed: Letterboxed  # what was sent
    elapsed_ms: float  # the request's round trip alone


def infer_image(
    client: triton.InferenceServerClient,
    contract: ModelContract,
    image: np.ndarray,
    version: str,
    min_score: float = 0.0,
    timeout_s: float | None = None,
) -> Answer:
    """Raises InferenceServerException as Triton does."""
    boxed = letterbox(image, contract)
    request = triton.InferInput(contract.input_name, [1, *boxed.image.shape], "UINT8")
    request.set_data_from_numpy(boxed.image[None])
    started = time.perf_counter()
    result = client.infer(contract.name, [request], model_version=version, client_timeout=timeout_s)
    elapsed_ms = (time.perf_counter() - started) * 1000
    boxes, scores, classes, count = (result.as_numpy(name)[0] for name in OUTPUTS)
    height, width = image.shape[:2]
    frame = ReadyFrame(ref=FrameRef(width=width, height=height), scale=boxed.scale,
                       pad_x=boxed.pad_x, pad_y=boxed.pad_y)  # fmt: skip
    found = to_detections(frame, boxes, scores, classes, int(count[0]), contract, min_score)
    return Answer(found, result.get_response().model_version, boxed, elapsed_ms)
