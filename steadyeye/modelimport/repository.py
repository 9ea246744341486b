"""`import_model`: a user's YOLO ONNX export -> a Triton model directory.

repository/name/config.pbtxt       backend/platform, batching, the input contract
repository/name/1/model.onnx       the fused graph (uint8 frame in, detections out)
repository/name/1/model.py         target "python": runs model.onnx with onnxruntime
repository/name/build_engine.sh    target "tensorrt": trtexec model.onnx -> 1/model.plan
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import onnx
from google.protobuf import text_format
from google.protobuf.message import DecodeError
from onnx import ModelProto

from steadyeye.modelimport.batch import fix_input_size, make_batch_dynamic, resolve_input_size
from steadyeye.modelimport.coco import COCO80
from steadyeye.modelimport.errors import ModelImportError
from steadyeye.modelimport.families import check_layout, get_family
from steadyeye.modelimport.fuse import fuse
from steadyeye.modelimport.verify import check_fused, network_output_shape

TARGETS = ("python", "onnxruntime", "tensorrt")
# The model returns boxes down to this score: the inference service serves those at or above its
# STEADYEYE_INFERENCE_MIN_SCORE (0.25) and passes the rest as candidates (capture's "uncertain").
DEFAULT_SCORE_THRESHOLD = 0.1
VERSION = "1"
PYTHON_MODEL = Path(__file__).with_name("python_model.py")


def import_model(
    onnx_path: Path,
    family: str,
    repository: Path,
    name: str,
    target: str = "python",
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    iou_threshold: float = 0.45,
    max_detections: int = 100,
    class_names: list[str] | None = None,
    max_batch_size: int = 8,
    input_size: tuple[int, int] | int | None = None,
    instances: int | None = None,
    intra_op_threads: int = 1,
) -> Path:
    """Write repository/name for Triton and return that directory.

    input_size is (height, width), needed only when the export's H and W are dynamic.
    instances: model instances Triton runs side by side; default 2 on CPU, 1 with tensorrt.
    intra_op_threads: onnxruntime's threads per instance on CPU (python and onnxruntime
    targets). Keep instances x threads near the cores Triton may use: on two cores shared with
    the services, two one-thread instances gave twice the pipeline's frames/s of one
    two-thread instance, whose threads wait for each other (docs/performance.md).
    Everything is built and checked before the directory is (atomically) replaced.
    """
    if target not in TARGETS:
        raise ModelImportError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    fam = get_family(family)
    names = list(COCO80 if class_names is None else class_names)
    _check_options(name, names, score_threshold, iou_threshold, max_detections, max_batch_size)
    if instances is None:
        instances = 1 if target == "tensorrt" else 2
    if instances < 1 or intra_op_threads < 1:
        raise ModelImportError(
            f"instances ({instances}) and intra_op_threads ({intra_op_threads}) must be at least 1"
        )
    source = load(Path(onnx_path))
    height, width = resolve_input_size(source, input_size)
    net = make_batch_dynamic(fix_input_size(source, height, width))
    shape = network_output_shape(net, height, width, 1.0 if fam.scale_01 else 255.0)
    check_layout(fam, shape, len(names), height, width)
    anchors = shape[2] if fam.channels_first else shape[1]
    if max_detections > anchors:
        raise ModelImportError(
            f"max_detections {max_detections} exceeds the model's {anchors} candidate boxes"
        )
    fused = fuse(
        net, fam, height, width, len(names), score_threshold, iou_threshold, max_detections
    )
    check_fused(fused, height, width, max_detections)

    contract = {
        "input_width": str(width),
        "input_height": str(height),
        "letterbox_pad_side": fam.pad_side,
        "letterbox_pad_value": "114",
        "family": fam.name,
        "score_threshold": str(float(score_threshold)),
        "iou_threshold": str(float(iou_threshold)),
        "max_detections": str(max_detections),
        "class_names": json.dumps(names),
    }
    if target == "python":
        contract["intra_op_threads"] = str(intra_op_threads)
    elif target == "onnxruntime":  # Triton's onnxruntime backend reads this name
        contract["intra_op_thread_count"] = str(intra_op_threads)
    config = model_config(
        name, target, height, width, max_detections, max_batch_size, contract, instances
    )
    return _write(Path(repository), name, target, fused, config, height, width, max_batch_size)


def load(path: Path) -> ModelProto:
    if not path.is_file():
        raise ModelImportError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except (DecodeError, ValueError, OSError, RuntimeError) as exc:
        raise ModelImportError(f"{path} is not an ONNX model ({exc})") from exc
    if not model.opset_import or not model.graph.node or not model.graph.output:
        raise ModelImportError(f"{path} is not an ONNX model (no graph in it)")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelImportError(f"{path} is not a valid ONNX model: {exc}") from exc
    return model


def _check_options(
    name: str, class_names: list[str], score: float, iou: float, k: int, max_batch_size: int
) -> None:
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        raise ModelImportError(f"model name {name!r} must be a plain directory name")
    if not class_names or not all(isinstance(c, str) and c for c in class_names):
        raise ModelImportError("class_names must be a non-empty list of non-empty strings")
    if not 0.0 <= score < 1.0:
        raise ModelImportError(f"score_threshold {score} must be in [0, 1)")
    if not 0.0 < iou <= 1.0:
        raise ModelImportError(f"iou_threshold {iou} must be in (0, 1]")
    if k < 1:
        raise ModelImportError(f"max_detections {k} must be at least 1")
    if max_batch_size < 1:
        raise ModelImportError(f"max_batch_size {max_batch_size} must be at least 1")


def model_config(
    name: str,
    target: str,
    height: int,
    width: int,
    max_detections: int,
    max_batch_size: int,
    parameters: dict[str, str],
    instances: int = 1,
) -> str:
    """config.pbtxt text, built as Triton's own ModelConfig message so it always parses."""
    from tritonclient.grpc import model_config_pb2 as mc

    config = mc.ModelConfig(name=name, max_batch_size=max_batch_size)
    if target == "tensorrt":
        config.platform = "tensorrt_plan"
    else:
        config.backend = target  # "python" or "onnxruntime"
    config.input.add(name="images", data_type=mc.TYPE_UINT8, dims=[height, width, 3])
    k = max_detections
    for out, dtype, dims in (
        ("boxes", mc.TYPE_FP32, [k, 4]),
        ("scores", mc.TYPE_FP32, [k]),
        ("classes", mc.TYPE_INT32, [k]),
        ("count", mc.TYPE_INT32, [1]),
    ):
        config.output.add(name=out, data_type=dtype, dims=dims)
    batching = config.dynamic_batching
    batching.preferred_batch_size.extend(sorted({max(1, max_batch_size // 2), max_batch_size}))
    batching.max_queue_delay_microseconds = 2000
    # A bounded queue: when inference falls behind, Triton rejects at once (UNAVAILABLE, which
    # clients retry) instead of queueing without limit and answering every request late.
    policy = batching.default_queue_policy
    policy.max_queue_size = max(64, 4 * max_batch_size)
    policy.timeout_action = mc.ModelQueuePolicy.REJECT
    policy.allow_timeout_override = True
    kind = (
        mc.ModelInstanceGroup.KIND_GPU if target == "tensorrt" else mc.ModelInstanceGroup.KIND_CPU
    )
    config.instance_group.add(kind=kind, count=instances)
    # Exactly version 1, not "the latest folder": a candidate version added beside it later must
    # not start serving when Triton restarts (`steadyeye rollout` lists the versions to load).
    config.version_policy.specific.versions.append(1)
    for key, value in parameters.items():
        config.parameters[key].string_value = value
    return text_format.MessageToString(config)


def build_engine_script(height: int, width: int, max_batch_size: int) -> str:
    opt = max(1, max_batch_size // 2)
    shape = f"x{height}x{width}x3"
    return f"""#!/bin/sh
# Build the TensorRT engine for this model on the GPU (and TensorRT version) that will serve
# it: engines are not portable. Run from anywhere; paths are relative to this script.
set -eu
cd "$(dirname "$0")"
trtexec --onnx={VERSION}/model.onnx --saveEngine={VERSION}/model.plan --fp16 \\
  --minShapes=images:1{shape} --optShapes=images:{opt}{shape} \\
  --maxShapes=images:{max_batch_size}{shape} "$@"
"""


def _write(
    repository: Path,
    name: str,
    target: str,
    fused: ModelProto,
    config: str,
    height: int,
    width: int,
    max_batch_size: int,
) -> Path:
    repository.mkdir(parents=True, exist_ok=True)
    final = repository / name
    # Build beside the final directory, then swap it in, so Triton polling the repository
    # never loads a half-written model.
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=repository))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the model from a Triton of another user
    try:
        (staging / VERSION).mkdir()
        onnx.save(fused, str(staging / VERSION / "model.onnx"))
        (staging / "config.pbtxt").write_text(config)
        if target == "python":
            shutil.copyfile(PYTHON_MODEL, staging / VERSION / "model.py")
        if target == "tensorrt":
            script = staging / "build_engine.sh"
            script.write_text(build_engine_script(height, width, max_batch_size))
            script.chmod(0o755)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
