"""Run graphs once under onnxruntime at import time, so a model that cannot batch or run fails
here with a clear message instead of inside Triton."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from onnx import ModelProto

from steadyeye.modelimport.errors import ModelImportError

if TYPE_CHECKING:
    import onnxruntime


def session(model: ModelProto) -> onnxruntime.InferenceSession:
    import onnxruntime as ort  # the `model` extra; imported late so the package loads without

    options = ort.SessionOptions()
    options.log_severity_level = 3  # the user's export may trigger harmless ORT warnings
    try:
        return ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ModelImportError(f"onnxruntime cannot load the model: {exc}") from exc


def network_output_shape(net: ModelProto, height: int, width: int, pixel_max: float) -> tuple:
    """Run the (batch-dynamic) network on two images alone and together: return the real shape
    of its first output at batch 1, after checking batch 2 gives the same numbers."""
    sess = session(net)
    (image,) = sess.get_inputs()
    dtype = np.float16 if image.type == "tensor(float16)" else np.float32
    rng = np.random.default_rng(0)
    images = (rng.uniform(0, pixel_max, (2, 3, height, width))).astype(dtype)
    output = sess.get_outputs()[0].name
    try:
        alone = [sess.run([output], {image.name: images[i : i + 1]})[0] for i in range(2)]
    except Exception as exc:
        raise ModelImportError(
            f"onnxruntime cannot run the model on a {width}x{height} input: {exc}"
        ) from exc
    try:
        together = sess.run([output], {image.name: images})[0]
    except Exception as exc:
        raise ModelImportError(
            f"the model does not run with a batch of 2 after making its batch dynamic ({exc}); "
            "some node still assumes batch 1: export it with a dynamic batch"
        ) from exc
    expected = np.concatenate(alone).astype(np.float32)
    diff = float(np.abs(together.astype(np.float32) - expected).max())
    if diff > 1e-3 * max(1.0, float(np.abs(expected).max())):
        raise ModelImportError(
            f"with a batch of 2 the model's output differs from two batch-1 runs (by {diff:g}); "
            "some node mixes the batch: export it with a dynamic batch"
        )
    return tuple(alone[0].shape)


def check_fused(fused: ModelProto, height: int, width: int, max_detections: int) -> None:
    """One batch-2 run of the fused graph with the output shapes and types Triton will expect."""
    sess = session(fused)
    images = np.random.default_rng(1).integers(0, 256, (2, height, width, 3), dtype=np.uint8)
    try:
        boxes, scores, classes, count = sess.run(
            ["boxes", "scores", "classes", "count"], {"images": images}
        )
    except Exception as exc:
        raise ModelImportError(f"the fused model does not run: {exc}") from exc
    k = max_detections
    got = [
        (boxes.shape, boxes.dtype),
        (scores.shape, scores.dtype),
        (classes.shape, classes.dtype),
        (count.shape, count.dtype),
    ]
    want = [((2, k, 4), np.float32), ((2, k), np.float32), ((2, k), np.int32), ((2, 1), np.int32)]
    if got != want:
        raise ModelImportError(f"the fused model's outputs are {got}, expected {want}")
