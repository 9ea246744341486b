"""One ONNX graph from a uint8 letterboxed frame to final detections.

    images uint8 [N, H, W, 3] (BGR, as OpenCV gives it)
      -> Cast, NHWC->NCHW, channel order and /255 per family     (pre/)
      -> the user's network, batch made dynamic                  (net/)
      -> family decode, class-aware NMS, top-K                   (post/)
      -> boxes f32 [N, K, 4], scores f32 [N, K], classes i32 [N, K], count i32 [N, 1]

Only ops whose signature is the same from opset 11 to today are generated (Slice with input
ranges, ArgMax, GatherElements, TopK, NonMaxSuppression, ScatterND, ...; no Split/Squeeze/Reduce*
whose attributes became inputs), so the pre/post graphs take the network's own opset and the
network itself is left as exported. All of them are supported by TensorRT's ONNX parser.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import ModelProto, TensorProto, compose, helper, version_converter

from steadyeye.modelimport.batch import BATCH, dims, graph_inputs, make_batch_dynamic
from steadyeye.modelimport.builder import GraphBuilder
from steadyeye.modelimport.errors import ModelImportError
from steadyeye.modelimport.families import Family

MIN_OPSET = 11  # NonMaxSuppression/TopK/ScatterND/GatherElements in their current form
INPUT = "images"
OUTPUTS = ("boxes", "scores", "classes", "count")


def fuse(
    model: ModelProto,
    family: Family,
    height: int,
    width: int,
    num_classes: int,
    score_threshold: float = 0.1,
    iou_threshold: float = 0.45,
    max_detections: int = 100,
) -> ModelProto:
    """The fused model; `model` is the user's network (its first output is the raw head)."""
    net = make_batch_dynamic(_at_least_opset(model, MIN_OPSET))
    opsets = [helper.make_opsetid(o.domain, o.version) for o in net.opset_import]
    opset = next(o.version for o in net.opset_import if o.domain in ("", "ai.onnx"))
    ir_version = max(
        net.ir_version, helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
    )
    net.ir_version = ir_version
    net = compose.add_prefix(net, "net/")
    (net_input,) = graph_inputs(net)
    net_output = net.graph.output[0]

    def model_of(graph: onnx.GraphProto) -> ModelProto:
        return helper.make_model(
            graph,
            opset_imports=opsets,
            ir_version=ir_version,
            producer_name="steadyeye-model-import",
        )

    pre = model_of(preprocess_graph(family, height, width, net_input.type.tensor_type.elem_type))
    post = model_of(
        postprocess_graph(
            family,
            height,
            width,
            num_classes,
            net_output,
            score_threshold,
            iou_threshold,
            max_detections,
        )
    )
    fused = compose.merge_models(pre, net, io_map=[("pre/nchw", net_input.name)])
    fused = compose.merge_models(
        fused,
        post,
        io_map=[(net_output.name, "post/raw")],
        outputs=list(OUTPUTS),
        producer_name="steadyeye-model-import",
    )
    _prune(fused)
    # merge_models appends each part's opset imports; one entry per domain is the valid form.
    unique = {(o.domain, o.version): o for o in fused.opset_import}
    del fused.opset_import[:]
    fused.opset_import.extend(unique.values())
    fused.graph.name = "steadyeye_fused"
    try:
        onnx.checker.check_model(fused, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ModelImportError(f"the fused graph is not valid ONNX: {exc}") from exc
    return fused


def preprocess_graph(family: Family, height: int, width: int, net_dtype: int) -> onnx.GraphProto:
    g = GraphBuilder("pre")
    np_dtype = helper.tensor_dtype_to_np_dtype(net_dtype)
    x = g.op("Cast", INPUT, to=net_dtype, hint="to_float")
    x = g.op("Transpose", x, perm=[0, 3, 1, 2], hint="to_nchw")
    if not family.bgr:  # OpenCV gives BGR: reverse the channel axis for RGB networks
        x = g.op("Gather", x, g.i64([2, 1, 0], "bgr_to_rgb"), axis=1, hint="to_rgb")
    if family.scale_01:  # Div, not Mul(1/255): bit-identical to the usual `img / 255`
        x = g.op("Div", x, g.const(255.0, "max_pixel", np_dtype), hint="to_01")
    g.op("Identity", x, out="pre/nchw")
    return g.graph(
        "preprocess",
        [helper.make_tensor_value_info(INPUT, TensorProto.UINT8, [BATCH, height, width, 3])],
        [helper.make_tensor_value_info("pre/nchw", net_dtype, [BATCH, 3, height, width])],
    )


def postprocess_graph(
    family: Family,
    height: int,
    width: int,
    num_classes: int,
    raw_output: onnx.ValueInfoProto,
    score_threshold: float,
    iou_threshold: float,
    max_detections: int,
) -> onnx.GraphProto:
    g = GraphBuilder("post")
    raw = "post/raw"
    elem = raw_output.type.tensor_type.elem_type
    x = raw if elem == TensorProto.FLOAT else g.op("Cast", raw, to=TensorProto.FLOAT)
    boxes, score, cls = family.decode(g, x, height, width, num_classes)
    k = max_detections

    # Class-aware NMS natively: scores [N, C, A] hold each box's score in its best class only
    # (one class per box, as before) and -1 elsewhere, below any score_threshold in [0, 1), so
    # no NMS implementation can select a box in another class. The boxes go in unmodified
    # (letterboxed pixels): no tensor on this path leaves float16's range under TensorRT --fp16.
    class_ids = g.i64(np.arange(num_classes).reshape(1, -1, 1), "class_ids")
    cls3 = g.op("Reshape", cls, g.i64([0, 1, -1]), hint="class3")
    in_class = g.op("Equal", cls3, class_ids, hint="in_class")
    score3 = g.op("Reshape", score, g.i64([0, 1, -1]), hint="score3")
    selected = g.op(
        "NonMaxSuppression",
        boxes,
        g.op("Where", in_class, score3, g.f32(-1.0), hint="nms_scores"),
        g.i64([k], "max_detections"),
        g.f32([iou_threshold], "iou_threshold"),
        g.f32([score_threshold], "score_threshold"),
        hint="nms",
    )

    # selected [M, 3] = (batch, class, box) -> keep mask [N, A] -> top K kept scores. At most one
    # class per box can select it, so the (batch, box) pairs are unique, as ScatterND needs.
    pairs = g.op("Gather", selected, g.i64([0, 2]), axis=1, hint="batch_box")
    ones = g.op(
        "ConstantOfShape",
        g.op("Slice", g.op("Shape", selected), g.i64([0]), g.i64([1])),
        value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0]),
        hint="ones",
    )
    zeros = g.op(
        "ConstantOfShape",
        g.op("Shape", score),
        value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
        hint="zeros",
    )
    keep = g.op("ScatterND", zeros, pairs, ones, hint="keep_mask")
    kept = g.op("Mul", score, keep, hint="kept_scores")
    top_scores, top_index = g.op_multi(
        "TopK",
        kept,
        g.i64([k], "k"),
        n_out=2,
        axis=1,
        largest=1,
        sorted=1,
        outs=["scores", "post/top_index"],
    )

    # Padding rows (score 0) get class 0 and an all-zero box instead of a random anchor's.
    valid = g.op("Greater", top_scores, g.f32(0.0), hint="valid")
    top_cls = g.op("GatherElements", cls, top_index, axis=1, hint="top_class")
    g.op("Cast", g.op("Where", valid, top_cls, g.i64(0)), to=TensorProto.INT32, out="classes")
    index4 = g.op(
        "Tile", g.op("Reshape", top_index, g.i64([0, -1, 1])), g.i64([1, 1, 4]), hint="top_index4"
    )
    top_boxes = g.op("GatherElements", boxes, index4, axis=1, hint="top_boxes")
    valid3 = g.op("Reshape", valid, g.i64([0, -1, 1]), hint="valid3")
    g.op("Where", valid3, top_boxes, g.f32(0.0), out="boxes")
    # A sum over K as MatMul with ones: ReduceSum's axes moved from attribute to input in 13.
    valid_f = g.op("Cast", valid, to=TensorProto.FLOAT, hint="valid_float")
    count_f = g.op("MatMul", valid_f, g.f32(np.ones((k, 1))), hint="count_float")
    g.op("Cast", count_f, to=TensorProto.INT32, out="count")

    raw_dims = [BATCH, *dims(raw_output)[1:]]
    return g.graph(
        "postprocess",
        [helper.make_tensor_value_info(raw, elem, raw_dims)],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [BATCH, k, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [BATCH, k]),
            helper.make_tensor_value_info("classes", TensorProto.INT32, [BATCH, k]),
            helper.make_tensor_value_info("count", TensorProto.INT32, [BATCH, 1]),
        ],
    )


def _at_least_opset(model: ModelProto, minimum: int) -> ModelProto:
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise ModelImportError("the model imports no standard ONNX opset")
    if opset >= minimum:
        return model
    try:  # rare: exports older than opset 11; upgrade the whole network consistently
        return version_converter.convert_version(model, minimum)
    except Exception as exc:
        raise ModelImportError(
            f"cannot upgrade the model from opset {opset} to {minimum}: "
            f"{exc}; re-export it with opset >= {minimum}"
        ) from exc


def _prune(model: ModelProto) -> None:
    """Drop nodes and weights that feed none of the outputs (extra heads of the export)."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(node.input)
    if len(kept) < len(graph.node):
        nodes = list(reversed(kept))
        del graph.node[:]
        graph.node.extend(nodes)
    # Also drops the batch-1 Reshape targets that make_batch_dynamic replaced.
    weights = [w for w in graph.initializer if w.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(weights)
