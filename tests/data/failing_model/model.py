"""A Triton Python-backend model that fails as a GPU model does under pressure, for the tier
tests (tests/test_inference_tiers.py). Its config's `failure` parameter says how:
oom: every request gets the CUDA allocator's out-of-memory text (INTERNAL), at once;
slow: each execution takes 1 s (with a queue of 1, the others are rejected: queue full)."""

import json
import time

import triton_python_backend_utils as pb_utils

OOM = "CUDA failure 2: out of memory ; GPU=0 ; expr=cudaMalloc((void**)&p, size);"


class TritonPythonModel:
    def initialize(self, args):
        parameters = json.loads(args["model_config"])["parameters"]
        self.failure = parameters["failure"]["string_value"]

    def execute(self, requests):
        if self.failure == "slow":
            time.sleep(1.0)
        text = OOM if self.failure == "oom" else "too slow to answer"
        return [pb_utils.InferenceResponse(error=pb_utils.TritonError(text)) for _ in requests]
