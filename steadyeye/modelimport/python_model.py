"""Triton Python-backend model for a model written by `steadyeye model import`.

Copied to <repository>/<name>/1/model.py, next to the fused model.onnx it runs with
onnxruntime: uint8 letterboxed BGR frames in, final detections out. Only importable inside
Triton (triton_python_backend_utils); tests exercise it through a real Triton.
"""

import json
import os
import sys
from pathlib import Path

# Triton's Python stub ignores PYTHONPATH when it builds sys.path: put it back first, so the
# numpy and onnxruntime of the environment that started Triton are the ones imported.
for _entry in reversed(os.environ.get("PYTHONPATH", "").split(os.pathsep)):
    if _entry and _entry not in sys.path:
        sys.path.insert(0, _entry)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402

OUTPUTS = ("boxes", "scores", "classes", "count")


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        # Triton batches requests; one run uses these threads. Keep it small: the services
        # share the machine, and Triton runs instances side by side (instance_group).
        options.intra_op_num_threads = int(params.get("intra_op_threads") or 1)
        options.inter_op_num_threads = 1
        # Idle threads sleep instead of spinning: spinning burns the cores the services need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = Path(__file__).with_name("model.onnx")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = config["input"][0]["name"]

    def execute(self, requests: list) -> list:
        """All requests of a dynamic batch in one onnxruntime run, split back per request."""
        images = [
            pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests
        ]
        try:
            outputs = self.session.run(list(OUTPUTS), {self.input_name: np.concatenate(images)})
        except Exception as exc:  # answer every request instead of failing the whole batch
            error = pb_utils.TritonError(f"onnxruntime failed: {exc}")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        responses, start = [], 0
        for batch in images:
            end = start + len(batch)
            tensors = [
                pb_utils.Tensor(name, np.ascontiguousarray(out[start:end]))
                for name, out in zip(OUTPUTS, outputs, strict=True)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start = end
        return responses

    def finalize(self) -> None:
        self.session = None
