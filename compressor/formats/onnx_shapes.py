"""Feeding a graph what it declares: many exported graphs take a fixed batch (often 1).

Kept free of torch so the measuring child process can use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import onnx

if TYPE_CHECKING:
    from compressor.inputs import EvalInputs

Feed = dict[str, np.ndarray]


def declared_batch(model: onnx.ModelProto) -> int | None:
    """The fixed batch every graph input declares, or None when the batch is free."""
    initializers = {i.name for i in model.graph.initializer}
    firsts: set[int | None] = set()
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim
        first = dims[0] if dims else None
        firsts.add(
            int(first.dim_value) if first is not None and first.HasField("dim_value") else None
        )
    return firsts.pop() if len(firsts) == 1 and None not in firsts else None


def rows(tensors: Feed, start: int, size: int, *, pad: bool) -> Feed:
    """``size`` rows from ``start``; with ``pad`` a short chunk repeats its last row."""
    chunk = {k: v[start : start + size] for k, v in tensors.items()}
    short = size - next(iter(chunk.values())).shape[0]
    if not pad or short <= 0:
        return chunk
    return {k: np.concatenate([v, np.repeat(v[-1:], short, 0)]) for k, v in chunk.items()}


def graph_batches(model: onnx.ModelProto, inputs: EvalInputs, size: int) -> list[Feed]:
    """``inputs`` in batches of ``size``, or of the graph's fixed batch when it has one."""
    fixed = declared_batch(model)
    step = fixed or size
    n = inputs.rows
    return [rows(inputs.tensors, i, step, pad=fixed is not None) for i in range(0, n, step)]
