"""Graph surgery on the user's network: a dynamic batch dimension and a fixed input size.

Exports made with a fixed batch of 1 bake that 1 into the graph twice: in the declared shapes of
inputs and outputs, and in the constant target shapes of Reshape nodes (e.g. YOLOX's
[1, 85, -1]). Triton batches requests, so both must become dynamic.
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, TensorProto, ValueInfoProto, helper, numpy_helper

from steadyeye.modelimport.errors import ModelImportError

BATCH = "batch"


def graph_inputs(model: ModelProto) -> list[ValueInfoProto]:
    # Before IR 4 initializers were also listed as inputs; those are weights, not inputs.
    weights = {init.name for init in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in weights]


def dims(value: ValueInfoProto) -> list[int | str | None]:
    """A tensor's declared dims: int if static, the symbol if named, None if unknown."""
    shape = value.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in shape.dim]


def make_batch_dynamic(model: ModelProto) -> ModelProto:
    """A copy whose dim 0 is the symbol 'batch' everywhere batch 1 was baked in.

    A model whose input batch is already symbolic is returned unchanged (as a copy).
    """
    model = _copy(model)
    graph = model.graph
    batch = [dims(v)[0] if dims(v) else None for v in graph_inputs(model)]
    if any(not isinstance(b, int) for b in batch):
        return model  # already dynamic (or unknown): trust the export
    if any(b != 1 for b in batch):
        raise ModelImportError(
            f"the model's batch dimension is fixed at {batch[0]}; "
            "export it with batch 1 or a dynamic batch"
        )
    for value in [*graph_inputs(model), *graph.output]:
        first = value.type.tensor_type.shape.dim[0]
        first.Clear()
        first.dim_param = BATCH
    # Intermediate shapes were recorded for batch 1; let shape inference redo them.
    del graph.value_info[:]
    _reshape_targets_copy_batch(model)
    return model


def _reshape_targets_copy_batch(model: ModelProto) -> None:
    """Reshape targets [1, ...] -> [0, ...]: 0 copies the input's dim 0, i.e. the batch."""
    graph = model.graph
    constants: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    constants[node.output[0]] = numpy_helper.to_array(attr.t)
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in constants:
            continue
        target = constants[node.input[1]]
        if target.ndim != 1 or target.size < 2 or target[0] != 1:
            continue
        if any(a.name == "allowzero" and a.i for a in node.attribute):
            raise ModelImportError(
                f"Reshape {node.name!r} sets allowzero, so its batch of 1 "
                "cannot be made dynamic; export with a dynamic batch"
            )
        # A new constant per node: the old one may feed other nodes that must keep their 1.
        name = f"{node.input[1]}/dynamic_batch/{node.name or id(node)}"
        graph.initializer.append(
            numpy_helper.from_array(np.concatenate([[0], target[1:]]).astype(target.dtype), name)
        )
        node.input[1] = name


def fix_input_size(model: ModelProto, height: int, width: int) -> ModelProto:
    """A copy whose NCHW image input has static H and W (the fused graph's input is static)."""
    model = _copy(model)
    (image,) = graph_inputs(model)
    shape = image.type.tensor_type.shape
    for axis, size in ((2, height), (3, width)):
        shape.dim[axis].Clear()
        shape.dim[axis].dim_value = size
    return model


def resolve_input_size(model: ModelProto, given: tuple[int, int] | int | None) -> tuple[int, int]:
    """(height, width) of the single NCHW image input, checked against `given`."""
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise ModelImportError(
            f"the model has {len(inputs)} inputs "
            f"({[i.name for i in inputs]}); a YOLO export has one image input"
        )
    image = inputs[0]
    elem = image.type.tensor_type.elem_type
    if elem not in (TensorProto.FLOAT, TensorProto.FLOAT16):
        raise ModelImportError(
            f"input {image.name!r} is {helper.tensor_dtype_to_string(elem)}; "
            "expected float32 or float16 pixels"
        )
    shape = dims(image)
    if len(shape) != 4 or shape[1] != 3:
        raise ModelImportError(
            f"input {image.name!r} has shape {shape}; expected NCHW [batch, 3, height, width]"
        )
    static = (shape[2], shape[3]) if all(isinstance(d, int) and d > 0 for d in shape[2:]) else None
    if isinstance(given, int):
        given = (given, given)
    if given is None:
        if static is None:
            raise ModelImportError(
                f"input {image.name!r} has dynamic height/width {shape[2:]}; "
                "pass input_size=(height, width)"
            )
        return static  # type: ignore[return-value]
    if static is not None and static != tuple(given):
        raise ModelImportError(
            f"input_size {given} differs from the model's fixed input size {static} (height, width)"
        )
    if min(given) < 32:
        raise ModelImportError(f"input_size {given} is too small for a YOLO model")
    return int(given[0]), int(given[1])


def _copy(model: ModelProto) -> ModelProto:
    copied = ModelProto()
    copied.CopyFrom(model)
    return copied
