"""Small computations on constants folded into initializers before onnx2torch converts a graph.

Exporters compute some operands from constants at run time: torch's opset-12 export of
``interpolate(scale_factor=2)`` gives Resize its scales as ``Concat(Constant, Constant)``, and
Paddle2ONNX and tf2onnx emit Cast/Unsqueeze chains on shapes the same way. Converted, such an
operand is a tensor the torch module reads with ``.tolist()``, which torch.export cannot trace
(data-dependent), so exporting the compressed module back to ONNX fails. Folded, it is a stored
constant that the module rewrites in onnx_torch.py turn into plain Python numbers.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

# Cheap, deterministic ops on small tensors: shape arithmetic, never a layer's weights.
FOLDABLE = frozenset(
    {"Concat", "Unsqueeze", "Squeeze", "Cast", "Slice", "Gather", "Reshape", "Mul", "Add", "Sub",
     "Div", "Floor", "Ceil", "Range", "ConstantOfShape", "Expand"}
)  # fmt: skip
MAX_ELEMENTS = 4096


def _evaluate(node: onnx.NodeProto, inputs: list[onnx.TensorProto], opset: int) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    graph = helper.make_graph(
        [node],
        "fold",
        [],
        [helper.make_empty_tensor_value_info(name) for name in node.output],
        initializer=inputs,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return list(ReferenceEvaluator(model).run(None, {}))


def fold_constant_nodes(model: onnx.ModelProto, opset: int) -> int:
    """Nodes of FOLDABLE ops whose inputs are all small initializers become initializers, in
    place, in graph order (so chains fold too); the number folded."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    kept: list[onnx.NodeProto] = []
    folded = 0
    for node in graph.node:
        names = [n for n in node.input if n]
        small = all(
            n in inits and int(np.prod(inits[n].dims, dtype=np.int64)) <= MAX_ELEMENTS
            for n in names
        )
        if node.op_type not in FOLDABLE or node.domain not in ("", "ai.onnx") or not small:
            kept.append(node)
            continue
        try:
            values = _evaluate(node, [inits[n] for n in names], opset)
        except Exception:  # an op the reference cannot run here stays a node
            kept.append(node)
            continue
        for name, value in zip(node.output, values, strict=True):
            tensor = numpy_helper.from_array(np.asarray(value), name)
            graph.initializer.append(tensor)
            inits[name] = tensor
        folded += 1
    del graph.node[:]
    graph.node.extend(kept)
    return folded
