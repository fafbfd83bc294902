"""Activation smoothing (SmoothQuant, Xiao et al. 2023) on an ONNX graph, before int8 quantization.

Dynamic int8 quantizes each activation tensor with ONE range. Transformer activations have a
few channels far larger than the rest, so that range wastes most of the 256 levels on them.
Dividing activation channel j by s_j and multiplying row j of the weight by s_j leaves the
product unchanged in float but moves the outliers into the weights, which are quantized per
output channel and absorb them well. s_j = max|X_j|^alpha / max|W_j|^(1 - alpha), with
max|X_j| measured on the calibration inputs, and never below 1. The division is one Mul per
activation tensor, shared by all MatMuls that read it (Q, K and V share one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compressor.formats.onnx_shapes import graph_batches
from compressor.inputs import EvalInputs

# Suffix of the smoothed activation. ORT's quantizer names its own tensors "<input>_scale",
# "<input>_quantized"...: ours must not end in a way that collides with those.
_SMOOTHED = "_smoothed"
_INV = "_smooth_inv"


@dataclass(frozen=True)
class SmoothingResult:
    model: onnx.ModelProto
    groups: int
    matmuls: list[str]


def const_weight_matmuls(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """MatMuls whose second input is a stored weight (activation x activation ones excluded)."""
    inits = {i.name for i in graph.initializer}
    return [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in inits]


def activation_abs_max(
    model: onnx.ModelProto, names: list[str], calibration: EvalInputs, *, batch_size: int = 8
) -> dict[str, np.ndarray]:
    """Per-channel max |x| of the named tensors over the calibration inputs (last axis)."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in names:
        if name not in known:
            probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(
        probe.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    wanted = {i.name for i in session.get_inputs()}
    out_names = [o.name for o in session.get_outputs()]
    maxima: dict[str, np.ndarray] = {}
    for batch in graph_batches(model, calibration, batch_size):
        results = dict(
            zip(
                out_names,
                session.run(None, {k: v for k, v in batch.items() if k in wanted}),
                strict=True,
            )
        )
        for name in names:
            value = np.abs(np.asarray(results[name], dtype=np.float32))
            channel_max = value.reshape(-1, value.shape[-1]).max(axis=0)
            maxima[name] = np.maximum(maxima[name], channel_max) if name in maxima else channel_max
    return maxima


def smooth_activations(
    model: onnx.ModelProto,
    calibration: EvalInputs,
    *,
    alpha: float,
    skip: set[str],
) -> SmoothingResult:
    """Return a smoothed copy of ``model``; MatMuls named in ``skip`` are left untouched."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    groups: dict[str, list[onnx.NodeProto]] = {}
    for node in const_weight_matmuls(graph):
        weight = inits[node.input[1]]
        if node.name in skip or len(weight.dims) != 2:
            continue
        groups.setdefault(node.input[0], []).append(node)
    # A weight shared with a skipped MatMul cannot be rescaled for one user only.
    shared = {n.input[1] for n in graph.node if n.name in skip}
    groups = {x: ns for x, ns in groups.items() if not any(n.input[1] in shared for n in ns)}
    if not groups:
        return SmoothingResult(model, 0, [])
    maxima = activation_abs_max(model, list(groups), calibration)

    muls: dict[str, onnx.NodeProto] = {}
    for x, nodes in groups.items():
        weights = [numpy_helper.to_array(inits[n.input[1]]).astype(np.float32) for n in nodes]
        w_max = np.max([np.abs(w).max(axis=1) for w in weights], axis=0)
        x_max = maxima[x]
        scale = np.power(np.maximum(x_max, 1e-5), alpha) / np.power(
            np.maximum(w_max, 1e-5), 1.0 - alpha
        )
        # Only outliers shrink: a channel is never amplified (scale >= 1). A channel quiet on
        # the calibration rows and amplified by 1/s can be loud on other text and then own the
        # tensor's one int8 range: all-MiniLM-L6-v2's held-out min cosine was 0.9822 with
        # scales down to 0.01, 0.9959 with this floor (alpha 0.8, calibrated on prose, judged
        # on other sentences); without smoothing 0.9868. Dead channels keep 1.
        scale = np.where(x_max > 1e-5, np.clip(scale, 1.0, 1e2), 1.0).astype(np.float32)
        for node, weight in zip(nodes, weights, strict=True):
            inits[node.input[1]].CopyFrom(
                numpy_helper.from_array((weight * scale[:, None]).astype(np.float32), node.input[1])
            )
            node.input[0] = x + _SMOOTHED
        graph.initializer.append(numpy_helper.from_array(1.0 / scale, x + _INV))
        muls[x + _SMOOTHED] = helper.make_node(
            "Mul", [x, x + _INV], [x + _SMOOTHED], name=x + "_smooth_mul"
        )

    # Each Mul goes right before its first reader, which keeps the node list topological.
    nodes_in_order = [onnx.NodeProto.FromString(n.SerializeToString()) for n in graph.node]
    graph.ClearField("node")
    for node in nodes_in_order:
        for name in node.input:
            if name in muls:
                graph.node.append(muls.pop(name))
        graph.node.append(node)
    return SmoothingResult(model, len(groups), sorted(n.name for ns in groups.values() for n in ns))
