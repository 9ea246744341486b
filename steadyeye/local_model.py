"""The model in-process, for benchmarks and tests that need its detections on many frames
without a pipeline round trip: the export imported exactly as the stack imports it (the fused
graph Triton serves: decode and NMS included), run by ONNX Runtime, letterboxed by preprocess's
own code and mapped back to source pixels by inference's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2 as mc

from services.contract import ModelContract
from services.inference.boxes import to_detections
from services.preprocess.letterbox import letterbox
from steadyeye.modelimport import import_model
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.detections_pb2 import Detection
from steadyeye.v1.frames_pb2 import ReadyFrame


class LocalModel:
    def __init__(
        self, onnx_path: Path, family: str, workdir: Path, name: str = "model", threads: int = 2
    ) -> None:
        """threads: ONNX Runtime's; 1 with no spinning is what one Triton instance does."""
        model_dir = import_model(onnx_path, family, workdir, name)
        config = text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())
        self.contract = ModelContract.from_config(
            json_format.MessageToDict(config, preserving_proto_field_name=True)
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        if threads == 1:
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(model_dir / "1" / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    def detect(self, image: np.ndarray, min_score: float = 0.25) -> list[Detection]:
        """What inference serves (min_score 0.25), or down to the model's floor (0.1)."""
        boxed = letterbox(image, self.contract)
        boxes, scores, classes, count = self.session.run(
            None, {self.contract.input_name: boxed.image[None]}
        )
        height, width = image.shape[:2]
        frame = ReadyFrame(ref=FrameRef(width=width, height=height), scale=boxed.scale,
                           pad_x=boxed.pad_x, pad_y=boxed.pad_y)  # fmt: skip
        return to_detections(frame, boxes[0], scores[0], classes[0], int(count[0, 0]),
                             self.contract, min_score)  # fmt: skip
