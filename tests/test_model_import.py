"""`steadyeye model import`: fused graphs against references computed here, independently.

The real YOLOX-nano export (found through STEADYEYE_MODEL_PATH / STEADYEYE_MEDIA_DIR or
../shared beside the checkout) checks the whole chain on a real image; tiny ONNX graphs built
here stand in for YOLOv5/YOLOv8 (and YOLOX) heads with known outputs.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from google.protobuf import text_format
from onnx import helper, numpy_helper
from tritonclient.grpc import model_config_pb2 as mc

from steadyeye.modelimport import ModelImportError, import_model, make_batch_dynamic

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MODEL = Path(os.environ.get("STEADYEYE_MODEL_PATH") or SHARED / "models" / "yolox_nano.onnx")
MEDIA = Path(os.environ.get("STEADYEYE_MEDIA_DIR") or SHARED / "media")
BUS = MEDIA / "bus.jpg"
needs_yolox = pytest.mark.skipif(
    not (MODEL.is_file() and BUS.is_file()),
    reason=f"needs {MODEL} and {BUS}: set STEADYEYE_MODEL_PATH and STEADYEYE_MEDIA_DIR",
)
CONTRACT_KEYS = {
    "input_width",
    "input_height",
    "letterbox_pad_side",
    "letterbox_pad_value",
    "family",
    "score_threshold",
    "iou_threshold",
    "max_detections",
    "class_names",
}


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_fused(model_dir: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    sess = session(model_dir / "1" / "model.onnx")
    return dict(
        zip(
            ["boxes", "scores", "classes", "count"],
            sess.run(["boxes", "scores", "classes", "count"], {"images": images}),
            strict=True,
        )
    )


# --- independent references -------------------------------------------------------------------


def letterbox_top_left(image: np.ndarray, size: int = 416) -> np.ndarray:
    h, w = image.shape[:2]
    r = min(size / h, size / w)
    canvas = np.full((size, size, 3), 114, np.uint8)
    resized = cv2.resize(image, (int(w * r), int(h * r)), interpolation=cv2.INTER_LINEAR)
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    return canvas


def yolox_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    grid, stride = [], []
    for s in (8, 16, 32):
        n = size // s
        for y in range(n):
            for x in range(n):
                grid.append((x, y))
                stride.append(s)
    return np.array(grid, np.float32), np.array(stride, np.float32)[:, None]


def decode_reference(raw: np.ndarray, family: str, size: int):
    """One image's raw output -> xyxy boxes, best-class scores, best classes."""
    raw = raw.astype(np.float32)
    if family == "yolov8":
        raw = raw.T
    xy, wh = raw[:, :2], raw[:, 2:4]
    if family == "yolox":
        grid, stride = yolox_grid(size)
        xy, wh = (xy + grid) * stride, np.exp(wh) * stride
    cls = raw[:, 4:] if family == "yolov8" else raw[:, 5:]
    best = cls.argmax(1)
    score = cls.max(1) if family == "yolov8" else raw[:, 4] * cls.max(1)
    return np.concatenate([xy - wh / 2, xy + wh / 2], 1), score, best


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def nms_reference(boxes, scores, classes, score_thr=0.25, iou_thr=0.45, k=100) -> list[int]:
    """Greedy per-class NMS (each box in its best class only), best first."""
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if scores[i] <= score_thr:
            break
        if all(classes[j] != classes[i] or iou(boxes[i], boxes[j]) <= iou_thr for j in kept):
            kept.append(int(i))
    return kept[:k]


def assert_detections(out: dict, row: int, boxes, scores, classes, k: int) -> None:
    n = len(scores)
    assert int(out["count"][row, 0]) == n
    np.testing.assert_allclose(out["boxes"][row, :n], np.reshape(boxes, (-1, 4)), atol=1e-2)
    np.testing.assert_allclose(out["scores"][row, :n], scores, atol=1e-4)
    assert out["classes"][row, :n].tolist() == list(classes)
    assert not out["scores"][row, n:].any() and not out["boxes"][row, n:].any()
    assert not out["classes"][row, n:].any()
    assert out["scores"].shape[1] == k


# --- the real YOLOX-nano export ---------------------------------------------------------------


@pytest.fixture(scope="module")
def yolox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (MODEL.is_file() and BUS.is_file()):
        pytest.skip(f"needs {MODEL} and {BUS}")
    return import_model(MODEL, "yolox", tmp_path_factory.mktemp("repo"), "yolox_nano")


@needs_yolox
def test_yolox_fused_equals_plain_onnxruntime_decode_and_nms(yolox_dir):
    frame = letterbox_top_left(cv2.imread(str(BUS)))
    raw = session(MODEL).run(None, {"images": frame.transpose(2, 0, 1)[None].astype(np.float32)})
    boxes, scores, classes = decode_reference(raw[0][0], "yolox", 416)
    kept = nms_reference(boxes, scores, classes, score_thr=0.1)  # import's default floor

    out = run_fused(yolox_dir, frame[None])

    assert_detections(out, 0, boxes[kept], scores[kept], classes[kept], 100)
    # The README's expectations for this image.
    n = int(out["count"][0, 0])
    found = list(zip(out["classes"][0, :n].tolist(), out["scores"][0, :n].tolist(), strict=True))
    assert found[0][0] == 5 and found[0][1] == pytest.approx(0.91, abs=0.01)
    assert [c for c, s in found if s >= 0.3] == [5, 0, 0, 0]


@needs_yolox
def test_yolox_batch_made_dynamic_gives_the_original_numbers():
    original = onnx.load(str(MODEL))
    dynamic = make_batch_dynamic(original)
    reshape_targets = {n.input[1] for n in dynamic.graph.node if n.op_type == "Reshape"}
    weights = {w.name: numpy_helper.to_array(w) for w in dynamic.graph.initializer}
    assert all(weights[t][0] == 0 for t in reshape_targets)
    assert dynamic.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, 3, 416, 416)).astype(np.float32)

    together = ort.InferenceSession(dynamic.SerializeToString()).run(None, {"images": images})[0]
    alone = [session(MODEL).run(None, {"images": images[i : i + 1]})[0] for i in range(2)]

    np.testing.assert_allclose(together, np.concatenate(alone), atol=1e-4)


@needs_yolox
def test_yolox_fused_batch_of_two_equals_each_alone(yolox_dir):
    bus = letterbox_top_left(cv2.imread(str(BUS)))
    other = letterbox_top_left(cv2.flip(cv2.imread(str(BUS)), 1)[100:, :500])
    together = run_fused(yolox_dir, np.stack([bus, other]))
    for row, frame in enumerate((bus, other)):
        alone = run_fused(yolox_dir, frame[None])
        n = int(alone["count"][0, 0])
        assert n > 0
        assert_detections(
            together,
            row,
            alone["boxes"][0, :n],
            alone["scores"][0, :n],
            alone["classes"][0, :n],
            100,
        )


@needs_yolox
def test_yolox_config_carries_the_contract(yolox_dir):
    config = text_format.Parse((yolox_dir / "config.pbtxt").read_text(), mc.ModelConfig())
    params = {k: v.string_value for k, v in config.parameters.items()}
    assert (params["input_width"], params["input_height"]) == ("416", "416")
    assert (params["letterbox_pad_side"], params["family"]) == ("top_left", "yolox")
    assert list(config.input[0].dims) == [416, 416, 3]
    fused = onnx.load(str(yolox_dir / "1" / "model.onnx"))
    assert [(o.domain, o.version) for o in fused.opset_import] == [("", 11)]  # the export's


FP16_MAX = float(np.finfo(np.float16).max)  # 65504


@needs_yolox
def test_yolox_post_processing_stays_in_float16_range(yolox_dir):
    """TensorRT --fp16 may run any float layer in float16: every constant and intermediate
    after the network (decode, NMS inputs, keep mask, top K) must stay below 65504."""
    fused = onnx.load(str(yolox_dir / "1" / "model.onnx"))
    weights = [w for w in fused.graph.initializer if w.name.startswith("post/")]
    assert weights and all(np.abs(numpy_helper.to_array(w)).max() < FP16_MAX for w in weights)
    inferred = onnx.shape_inference.infer_shapes(fused)
    known = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.output]}
    post = [n for n in fused.graph.node if n.name.startswith("post/")]
    (nms,) = [n for n in post if n.op_type == "NonMaxSuppression"]
    outputs = {o for n in post for o in n.output if o in known}
    assert set(nms.input[:2]) <= outputs  # the NMS boxes and scores are among those checked
    floats = sorted(
        o for o in outputs if known[o].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    )
    del fused.graph.output[:]
    fused.graph.output.extend(known[o] for o in floats)
    sess = ort.InferenceSession(fused.SerializeToString(), providers=["CPUExecutionProvider"])
    bus = letterbox_top_left(cv2.imread(str(BUS)))
    noise = np.random.default_rng(0).integers(0, 256, bus.shape, np.uint8)

    values = sess.run(floats, {"images": np.stack([bus, noise])})

    tensors = dict(zip(floats, values, strict=True))
    peaks = {name: float(np.abs(v).max(initial=0.0)) for name, v in tensors.items()}
    assert all(np.isfinite(p) and p < FP16_MAX for p in peaks.values()), peaks
    boxes = tensors[nms.input[0]]
    assert 0 < np.abs(boxes).max() < 4 * 416  # letterboxed pixels, no class offsets


# --- tiny stand-in networks -------------------------------------------------------------------

SIZE, NAMES = 96, ["a", "b", "c"]
CELLS = 12 * 12 + 6 * 6 + 3 * 3  # strides 8, 16, 32 at 96x96: 189 >= the default K of 100
ANCHORS = {"yolox": CELLS, "yolov5": 3 * CELLS, "yolov8": CELLS}
# (anchor, x1, y1, x2, y2, objectness, class probabilities) in input pixels.
SCENE = [
    (3, 10, 10, 30, 30, 0.9, (1.0, 0.0, 0.0)),  # kept
    (10, 11, 10, 31, 30, 0.8, (1.0, 0.1, 0.0)),  # IoU 0.9 with the first, same class: gone
    (20, 11, 10, 31, 30, 0.7, (0.1, 1.0, 0.0)),  # the same box in another class: kept
    (30, 40, 40, 50, 50, 0.5, (0.1, 0.2, 0.6)),  # best class 2, score 0.3: kept
    (40, 0, 50, 10, 60, 0.5, (0.0, 0.0, 0.4)),  # score 0.2: under the threshold
    (50, 20, 10, 40, 30, 0.6, (1.0, 0.0, 0.0)),  # IoU 0.33 with the first: kept
    (60, 10, 15, 30, 35, 0.5, (1.0, 0.0, 0.0)),  # IoU 0.6 with the first: gone
]
EXPECTED = [
    (10, 10, 30, 30, 0.9, 0),
    (11, 10, 31, 30, 0.7, 1),
    (20, 10, 40, 30, 0.6, 0),
    (40, 40, 50, 50, 0.3, 2),
]


def encode(family: str, scene: list) -> np.ndarray:
    """The raw head output [1, A, 5+C] (or [1, 4+C, A]) that decodes to `scene`."""
    raw = np.zeros((ANCHORS[family], 4 + len(NAMES) + (family != "yolov8")), np.float32)
    grid, stride = yolox_grid(SIZE)
    for anchor, x1, y1, x2, y2, obj, probs in scene:
        xy, wh = np.array([(x1 + x2) / 2, (y1 + y2) / 2]), np.array([x2 - x1, y2 - y1])
        if family == "yolox":
            xy, wh = xy / stride[anchor] - grid[anchor], np.log(wh / stride[anchor])
        cls = np.array(probs) * obj if family == "yolov8" else np.array([obj, *probs])
        raw[anchor] = [*xy, *wh, *cls]
    return (raw.T if family == "yolov8" else raw)[None]


def head_model(
    raw: np.ndarray, probe: tuple | None = None, dtype=np.float32, dynamic_hw: bool = False
) -> onnx.ModelProto:
    """Input [1, 3, 96, 96] -> `raw` + 0 * mean(input): known, yet computed from the input.
    probe=(index, input channel, weight) adds weight * mean(that channel) at raw[0][index].
    The batch-1 Reshape target exercises the batch surgery."""
    tensor = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    consts = [
        numpy_helper.from_array(raw.astype(dtype), "raw"),
        numpy_helper.from_array(np.array([1, 1, 1], np.int64), "one_one_one"),
        numpy_helper.from_array(np.zeros((), dtype), "zero"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["mean", "one_one_one"], ["mean3"]),
        helper.make_node("Mul", ["mean3", "zero"], ["nothing"]),
        helper.make_node("Add", ["raw", "nothing"], ["out"]),
    ]
    if probe:
        index, channel, weight = probe
        mask = np.zeros(raw.shape, dtype)
        mask[(0, *index)] = weight
        consts += [
            numpy_helper.from_array(mask, "mask"),
            numpy_helper.from_array(np.array([channel], np.int64), "channel"),
        ]
        nodes[-1] = helper.make_node("Add", ["raw", "nothing"], ["base"])
        nodes += [
            helper.make_node("Gather", ["x", "channel"], ["one"], axis=1),
            helper.make_node("ReduceMean", ["one"], ["one_mean"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Reshape", ["one_mean", "one_one_one"], ["one_mean3"]),
            helper.make_node("Mul", ["one_mean3", "mask"], ["probed"]),
            helper.make_node("Add", ["base", "probed"], ["out"]),
        ]
    hw = ["h", "w"] if dynamic_hw else [SIZE, SIZE]
    graph = helper.make_graph(
        nodes,
        "head",
        [helper.make_tensor_value_info("x", tensor, [1, 3, *hw])],
        [helper.make_tensor_value_info("out", tensor, raw.shape)],
        consts,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def save(model: onnx.ModelProto, tmp_path: Path) -> Path:
    path = tmp_path / "export.onnx"
    onnx.save(model, str(path))
    return path


def imported(tmp_path: Path, model: onnx.ModelProto, family: str, **options) -> Path:
    options.setdefault("score_threshold", 0.25)  # the scene's references are cut at 0.25
    return import_model(
        save(model, tmp_path), family, tmp_path / "repo", "m", class_names=NAMES, **options
    )


@pytest.mark.parametrize(
    ("family", "dtype", "k", "expected"),
    [
        ("yolov5", np.float32, 100, EXPECTED),
        ("yolov8", np.float32, 100, EXPECTED),
        ("yolox", np.float32, 100, EXPECTED),
        ("yolov8", np.float16, 100, EXPECTED),
        ("yolov5", np.float32, 2, EXPECTED[:2]),  # max_detections keeps the best K
    ],
)
def test_decode_and_nms_match_the_numpy_reference(tmp_path, family, dtype, k, expected):
    raw = encode(family, SCENE).astype(dtype)
    model_dir = imported(tmp_path, head_model(raw, dtype=dtype), family, max_detections=k)
    frames = np.stack(
        [np.full((SIZE, SIZE, 3), 114, np.uint8), np.zeros((SIZE, SIZE, 3), np.uint8)]
    )

    out = run_fused(model_dir, frames)

    boxes, scores, classes = decode_reference(raw[0], family, SIZE)
    kept = nms_reference(boxes, scores, classes, k=k)
    want = np.array(expected)
    atol = 1e-2 if dtype == np.float32 else 5e-2  # float16 head values
    np.testing.assert_allclose(boxes[kept], want[:, :4], atol=atol)
    np.testing.assert_allclose(scores[kept], want[:, 4], atol=atol)
    for row in range(2):  # the same in every batch row
        assert_detections(out, row, boxes[kept], scores[kept], classes[kept], k)


@pytest.mark.parametrize(
    ("family", "index", "weight", "score"),
    [
        # RGB families see R (204) / 255 in channel 0; YOLOX sees raw B (30), here * 0.01.
        ("yolov5", (5, 5), 1.0, 204 / 255),
        ("yolov8", (4, 5), 1.0, 204 / 255),
        ("yolox", (5, 5), 0.01, 0.30),
    ],
)
def test_pixels_reach_the_network_in_the_family_channel_order_and_scale(
    tmp_path, family, index, weight, score
):
    raw = encode(family, [(5, 10, 10, 30, 30, 1.0, (0.0, 0.0, 0.0))])  # class 0 score probed
    model_dir = imported(tmp_path, head_model(raw, probe=(index, 0, weight)), family)
    bgr = np.zeros((1, SIZE, SIZE, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 30, 60, 204

    out = run_fused(model_dir, bgr)

    assert_detections(out, 0, [10, 10, 30, 30], [score], [0], 100)


def test_nothing_above_the_threshold_gives_zero_count_and_zero_padding(tmp_path):
    raw = encode("yolov8", [(3, 10, 10, 30, 30, 0.2, (1.0, 0.0, 0.0))])
    out = run_fused(
        imported(tmp_path, head_model(raw), "yolov8"), np.zeros((3, SIZE, SIZE, 3), np.uint8)
    )
    assert out["count"].tolist() == [[0], [0], [0]]
    assert not out["scores"].any() and not out["boxes"].any() and not out["classes"].any()


def test_dynamic_height_and_width_need_an_input_size(tmp_path):
    model = head_model(encode("yolov8", SCENE), dynamic_hw=True)
    with pytest.raises(ModelImportError, match=r"dynamic height/width.*input_size"):
        imported(tmp_path, model, "yolov8")
    model_dir = imported(tmp_path, model, "yolov8", input_size=(SIZE, SIZE))
    config = text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())
    assert list(config.input[0].dims) == [SIZE, SIZE, 3]


def write_bytes(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("source", "family", "options", "message"),
    [
        (lambda t: t / "missing.onnx", "yolox", {}, r"missing\.onnx: no such file"),
        (
            lambda t: write_bytes(t, b"\x89PNG\r\n\x1a\n not a model \xff\xfe"),
            "yolox",
            {},
            "not an ONNX model",
        ),
        (lambda t: write_bytes(t, b""), "yolov8", {}, "not an ONNX model"),
        (
            lambda t: save(head_model(encode("yolov8", SCENE)), t),
            "yolox",
            {},
            r"does not match family yolox.*looks like a yolov8 export",
        ),
        (
            lambda t: save(head_model(encode("yolov5", SCENE)), t),
            "yolox",
            {},
            rf"{3 * CELLS} boxes, expected {CELLS}.*looks like a yolov5 export",
        ),
        (
            lambda t: save(head_model(encode("yolox", SCENE)), t),
            "yolov8",
            {},
            rf"{CELLS} channels per box, expected 7 for 3 classes.*looks like a yolox export",
        ),
        (
            lambda t: save(head_model(encode("yolov8", SCENE)), t),
            "yolov8",
            {"class_names": ["a", "b"]},
            r"7 channels per box, expected 6 for 2 classes",
        ),
        (
            lambda t: save(head_model(encode("yolov8", SCENE)), t),
            "yolov9",
            {},
            "unknown model family 'yolov9'",
        ),
        (
            lambda t: save(head_model(encode("yolov8", SCENE)), t),
            "yolov8",
            {"target": "tflite"},
            "unknown target 'tflite'",
        ),
        (
            lambda t: save(head_model(encode("yolov8", SCENE)), t),
            "yolov8",
            {"max_detections": CELLS + 1},
            f"max_detections {CELLS + 1} exceeds the model's {CELLS}",
        ),
        (
            lambda t: save(head_model(encode("yolov8", SCENE)), t),
            "yolov8",
            {"instances": 0},
            r"instances \(0\) and intra_op_threads \(1\) must be at least 1",
        ),
    ],
)
def test_bad_inputs_raise_a_clear_model_import_error(tmp_path, source, family, options, message):
    options = {"class_names": NAMES, **options}
    with pytest.raises(ModelImportError, match=message):
        import_model(source(tmp_path), family, tmp_path / "repo", "m", **options)
    assert not (tmp_path / "repo" / "m").exists()


@pytest.mark.parametrize(
    ("target", "backend", "platform", "kind", "files"),
    [
        (
            "python",
            "python",
            "",
            mc.ModelInstanceGroup.KIND_CPU,
            {"config.pbtxt", "1/model.onnx", "1/model.py"},
        ),
        (
            "onnxruntime",
            "onnxruntime",
            "",
            mc.ModelInstanceGroup.KIND_CPU,
            {"config.pbtxt", "1/model.onnx"},
        ),
        (
            "tensorrt",
            "",
            "tensorrt_plan",
            mc.ModelInstanceGroup.KIND_GPU,
            {"config.pbtxt", "1/model.onnx", "build_engine.sh"},
        ),
    ],
)
def test_config_per_target_parses_and_carries_the_contract(
    tmp_path, target, backend, platform, kind, files
):
    model_dir = imported(
        tmp_path,
        head_model(encode("yolov8", SCENE)),
        "yolo11",
        target=target,
        max_batch_size=6,
        score_threshold=0.3,
        iou_threshold=0.5,
        max_detections=20,
    )

    assert {str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file()} == files
    config = text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())
    assert (config.name, config.backend, config.platform) == ("m", backend, platform)
    assert config.max_batch_size == 6
    (image,) = config.input
    assert (image.name, image.data_type, list(image.dims)) == (
        "images",
        mc.TYPE_UINT8,
        [SIZE, SIZE, 3],
    )
    assert [(o.name, o.data_type, list(o.dims)) for o in config.output] == [
        ("boxes", mc.TYPE_FP32, [20, 4]),
        ("scores", mc.TYPE_FP32, [20]),
        ("classes", mc.TYPE_INT32, [20]),
        ("count", mc.TYPE_INT32, [1]),
    ]
    batching = config.dynamic_batching
    assert list(batching.preferred_batch_size) == [3, 6]
    assert batching.max_queue_delay_microseconds == 2000
    assert 0 < batching.default_queue_policy.max_queue_size <= 1000
    # Side by side on CPU, one onnxruntime thread each (docs/performance.md); one on a GPU.
    instances = 1 if target == "tensorrt" else 2
    assert [(g.kind, g.count) for g in config.instance_group] == [(kind, instances)]
    params = {k: v.string_value for k, v in config.parameters.items()}
    threads = {"python": "intra_op_threads", "onnxruntime": "intra_op_thread_count"}
    assert {k: params[k] for k in threads.values() if k in params} == (
        {threads[target]: "1"} if target in threads else {}
    )
    assert set(params) >= CONTRACT_KEYS
    assert {k: params[k] for k in CONTRACT_KEYS} == {
        "input_width": "96",
        "input_height": "96",
        "letterbox_pad_side": "center",
        "letterbox_pad_value": "114",
        "family": "yolov8",
        "score_threshold": "0.3",
        "iou_threshold": "0.5",
        "max_detections": "20",
        "class_names": '["a", "b", "c"]',
    }
    if target == "tensorrt":
        script = (model_dir / "build_engine.sh").read_text()
        for flag in (
            "--onnx=1/model.onnx",
            "--saveEngine=1/model.plan",
            "--fp16",
            "--minShapes=images:1x96x96x3",
            "--optShapes=images:3x96x96x3",
            "--maxShapes=images:6x96x96x3",
        ):
            assert flag in script
        assert "--layerPrecisions" not in script  # nothing to pin: see the float16 test below
        fused = onnx.load(str(model_dir / "1" / "model.onnx"))
        post = [w for w in fused.graph.initializer if w.name.startswith("post/")]
        assert post and all(np.abs(numpy_helper.to_array(w)).max() < FP16_MAX for w in post)
