"""A small helper for writing ONNX graphs node by node.

Every generated tensor and node name carries a prefix, so the pre- and post-processing graphs
never collide with names inside the user's network when the three are merged.
"""

from __future__ import annotations

import numpy as np
from onnx import GraphProto, NodeProto, TensorProto, ValueInfoProto, helper, numpy_helper


class GraphBuilder:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._used: set[str] = set()

    def name(self, hint: str) -> str:
        """A unique tensor/node name under this builder's prefix."""
        base = f"{self.prefix}/{hint}"
        name, n = base, 1
        while name in self._used:
            n += 1
            name = f"{base}_{n}"
        self._used.add(name)
        return name

    def const(
        self,
        value: np.ndarray | float | int | list,
        hint: str = "const",
        dtype: type | np.dtype | None = None,
    ) -> str:
        array = np.asarray(value, dtype=dtype)
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def i64(self, values: list[int] | int, hint: str = "const") -> str:
        return self.const(values, hint, np.int64)

    def f32(self, values: list[float] | float | np.ndarray, hint: str = "const") -> str:
        return self.const(values, hint, np.float32)

    def op(
        self,
        op_type: str,
        *inputs: str,
        hint: str | None = None,
        out: str | None = None,
        **attrs: object,
    ) -> str:
        """Add a one-output node; `out` fixes the output name (graph outputs)."""
        return self.op_multi(
            op_type, *inputs, n_out=1, hint=hint, outs=[out] if out else None, **attrs
        )[0]

    def op_multi(
        self,
        op_type: str,
        *inputs: str,
        n_out: int,
        hint: str | None = None,
        outs: list[str] | None = None,
        **attrs: object,
    ) -> list[str]:
        node_name = self.name(hint or op_type.lower())
        outputs = outs or [f"{node_name}:{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=node_name, **attrs))
        return outputs

    def slice(self, x: str, start: int, end: int, axis: int, hint: str = "slice") -> str:
        # Slice takes starts/ends/axes as inputs from opset 10 on: the same in every opset used.
        return self.op("Slice", x, self.i64([start]), self.i64([end]), self.i64([axis]), hint=hint)

    def graph(
        self, name: str, inputs: list[ValueInfoProto], outputs: list[ValueInfoProto]
    ) -> GraphProto:
        return helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
