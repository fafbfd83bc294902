"""Exact graph rewrites that let ONNX Runtime's CPU kernels run the same arithmetic faster.

Two costs, measured on all-MiniLM-L6-v2 int8 (batch 1, 128 tokens, one thread, ORT 1.32 on a
Xeon with AVX-512): 17.3 ms per run before, 8.9 ms after, outputs unchanged.

- **Subnormal softmax.** transformers masks padding by adding float32's lowest value to the
  attention scores. exp() of such a score underflows to subnormal floats, which x86 handles in
  microcode: the 6 Softmax nodes took 6.3 ms (0.8 ms each, 0.07 ms unmasked). A mask of -60
  relative to each score keeps exp() normal; a masked weight is then at most e^-60 (9e-27) of
  the row's largest, which adds nothing in float32 sums, so the outputs are those of the
  original mask. Only additive masks are rewritten: a mask selected by Where replaces the score
  and a finite value there would not be relative to it.
- **SkipLayerNormalization.** At session start ORT fuses the residual Add and the
  LayerNormalization after it into SkipLayerNormalization, whose CPU kernel ran 7x slower than
  the two ops it replaced (0.25 vs 0.035 ms on 128 x 384). The same Add written as Sum (equal
  arithmetic) is not matched by that fusion.

Neither is taken on faith: the float graph and its rewrite run on the step's calibration rows,
and the rewrite is quantized only where its outputs match and it measured faster on this
machine.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, numpy_helper

from compressor.formats.onnx_shapes import graph_batches
from compressor.inputs import EvalInputs
from compressor.measure.session_timing import cpu_session, session_runs

MASK_VALUE = -60.0
# Constants at or below this are "minus infinity" masks (transformers uses -3.4e38, older
# exports -10000).
_HUGE_NEGATIVE = -1e4
# Ops a padding mask passes through between its constant and the score Add.
_MASK_OPS = frozenset(
    {
        "Where",
        "Mul",
        "Sub",
        "Cast",
        "Expand",
        "Unsqueeze",
        "Squeeze",
        "Reshape",
        "Slice",
        "Tile",
        "Identity",
        "Concat",
    }
)
# Outputs whose largest relative difference exceeds this are not "unchanged".
_MATCH_TOLERANCE = 1e-4
_ROUNDS = 3
# Sessions are built from serialized protos, which protobuf caps at 2 GiB.
_IN_MEMORY_LIMIT = 1_800_000_000
_RUNS_PER_ROUND = 5
_CHECK_ROWS = 4


@dataclass
class _Graph:
    model: onnx.ModelProto
    producer: dict[str, onnx.NodeProto] = field(default_factory=dict)
    consumers: dict[str, list[onnx.NodeProto]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        for node in self.model.graph.node:
            for out in node.output:
                self.producer[out] = node
            for name in node.input:
                self.consumers[name].append(node)

    @property
    def outputs(self) -> set[str]:
        return {o.name for o in self.model.graph.output}


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _is_huge_negative(value: np.ndarray) -> bool:
    if value.dtype.kind != "f" or value.size == 0 or value.size > 16:
        return False
    return bool(np.all(value <= _HUGE_NEGATIVE))


def _score_adds(g: _Graph) -> set[str]:
    """Adds whose output feeds only last-axis Softmax nodes: masked attention scores."""
    found = set()
    for node in g.model.graph.node:
        if node.op_type != "Add" or node.output[0] in g.outputs:
            continue
        users = g.consumers[node.output[0]]
        if users and all(u.op_type == "Softmax" and _last_axis(u) for u in users):
            found.add(node.name or node.output[0])
    return found


def _last_axis(node: onnx.NodeProto) -> bool:
    axis = next(
        (onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), -1
    )
    return bool(axis == -1)


def _feeds_only_score_adds(g: _Graph, start: onnx.NodeProto, score_adds: set[str]) -> bool:
    """Every path from ``start`` stays within mask-shaping ops and ends at a score Add."""
    todo, seen, reached = [start], set(), False
    while todo:
        node = todo.pop()
        for out in node.output:
            if out in g.outputs:
                return False
            for user in g.consumers[out]:
                key = user.name or user.output[0]
                if key in score_adds:
                    reached = True
                elif user.op_type in _MASK_OPS and key not in seen:
                    seen.add(key)
                    todo.append(user)
                elif user.op_type not in _MASK_OPS:
                    return False
    return reached


def soften_attention_masks(model: onnx.ModelProto) -> int:
    """Point each additive padding mask's "minus infinity" constant at MASK_VALUE, in place;
    the number of constants replaced."""
    g = _Graph(model)
    score_adds = _score_adds(g)
    if not score_adds:
        return 0
    constants = _constants(model)
    replaced = 0
    old_names: set[str] = set()
    for node in list(model.graph.node):
        if node.op_type not in _MASK_OPS:
            continue
        for slot, name in enumerate(node.input):
            value = constants.get(name)
            if value is None or not _is_huge_negative(value):
                continue
            if not _feeds_only_score_adds(g, node, score_adds):
                continue
            soft = np.full_like(value, MASK_VALUE)
            new_name = f"{name}__soft_mask"
            if new_name not in constants:
                model.graph.initializer.append(numpy_helper.from_array(soft, new_name))
                constants[new_name] = soft
            node.input[slot] = new_name
            replaced += 1
            old_names.add(name)
    _drop_if_unused(model, old_names)
    return replaced


def _names_read(graph: onnx.GraphProto) -> set[str]:
    """Every tensor name a node reads, subgraphs (If/Loop bodies) included."""
    names = {o.name for o in graph.output}
    for node in graph.node:
        names.update(node.input)
        for attr in node.attribute:
            for sub in (
                [attr.g, *attr.graphs]
                if attr.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS)
                else []
            ):
                names |= _names_read(sub)
    return names


def _drop_if_unused(model: onnx.ModelProto, names: set[str]) -> None:
    """The replaced constants no node reads any more (ORT warns about each at load)."""
    unused = names - _names_read(model.graph)
    for init in [i for i in model.graph.initializer if i.name in unused]:
        model.graph.initializer.remove(init)
    for node in [n for n in model.graph.node if n.op_type == "Constant" and n.output[0] in unused]:
        model.graph.node.remove(node)


def _feeds_layer_norm(g: _Graph, add: onnx.NodeProto) -> bool:
    users = g.consumers[add.output[0]]
    if add.output[0] in g.outputs or not users:
        return False
    if len(users) == 1 and users[0].op_type == "LayerNormalization":
        return users[0].input[0] == add.output[0]
    # A LayerNorm exported as ops (opset < 17): ReduceMean and Sub read the sum.
    kinds = {u.op_type for u in users}
    return kinds == {"ReduceMean", "Sub"}


def unfuse_residual_layer_norms(model: onnx.ModelProto) -> int:
    """Write each Add that feeds a LayerNorm as Sum, in place; the number rewritten."""
    g = _Graph(model)
    constants = _constants(model)
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Add" or len(node.input) != 2:
            continue
        if any(name in constants for name in node.input):
            continue  # a bias add: ORT folds it into the MatMul before it
        if _feeds_layer_norm(g, node):
            node.op_type = "Sum"
            changed += 1
    return changed


def _outputs(session: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    names = {i.name for i in session.get_inputs()}
    return list(session.run(None, {k: v for k, v in feed.items() if k in names}))


def _largest_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        scale = max(float(np.abs(x64).max()), 1e-12)
        worst = max(worst, float(np.abs(x64 - y64).max()) / scale)
    return worst


def _p50s(sessions: dict[str, Any], feed: dict[str, np.ndarray]) -> dict[str, float]:
    """Median ms per run on one thread, the graphs alternating in rounds."""
    feeds = {
        k: {n: v for n, v in feed.items() if n in {i.name for i in s.get_inputs()}}
        for k, s in sessions.items()
    }
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(_ROUNDS):
        for k, s in sessions.items():
            times[k] += session_runs(s, feeds[k], warmup=1, repeats=_RUNS_PER_ROUND)
    return {k: float(np.median(v) * 1000.0) for k, v in times.items()}


@dataclass(frozen=True)
class CpuTuning:
    model: onnx.ModelProto  # the graph to quantize: rewritten, or the one given
    details: dict[str, Any]

    @property
    def found(self) -> bool:
        return bool(
            self.details["attention_masks_softened"] or self.details["layer_norm_adds_as_sum"]
        )


def tune_for_cpu(model: onnx.ModelProto, calibration: EvalInputs) -> CpuTuning:
    """The float graph rewritten where that is exact on the calibration rows and measured
    faster on this machine; else ``model`` itself. Run before quantizing, so what the step
    then judges (smoothing, fidelity) is the graph that ships: int8 noise would hide whether
    the rewrite itself changed anything."""
    if model.ByteSize() > _IN_MEMORY_LIMIT:  # not copied, not reported
        return CpuTuning(model, {"attention_masks_softened": 0, "layer_norm_adds_as_sum": 0})
    trial = onnx.ModelProto.FromString(model.SerializeToString())
    masks = soften_attention_masks(trial)
    sums = unfuse_residual_layer_norms(trial)
    details: dict[str, Any] = {"attention_masks_softened": masks, "layer_norm_adds_as_sum": sums}
    if masks == 0 and sums == 0:
        return CpuTuning(model, {**details, "applied": False})
    try:
        return _checked(model, trial, calibration, details)
    except Exception as exc:  # an optional speed-up never fails the step
        why = f"not checked: {type(exc).__name__}: {exc}"[:300]
        return CpuTuning(model, {**details, "applied": False, "why": why})


def _checked(
    model: onnx.ModelProto,
    trial: onnx.ModelProto,
    calibration: EvalInputs,
    details: dict[str, Any],
) -> CpuTuning:
    # One thread, as the timing below runs (the check costs a MiniLM job about 2 s); a few
    # rows show a changed output as well as many.
    sessions = {
        "as_exported": cpu_session(model, threads=1),
        "rewritten": cpu_session(trial, threads=1),
    }
    rows = graph_batches(model, calibration, _CHECK_ROWS)[0]
    difference = _largest_difference(
        _outputs(sessions["as_exported"], rows), _outputs(sessions["rewritten"], rows)
    )
    details["float_outputs_largest_relative_difference"] = float(f"{difference:.3g}")
    if difference > _MATCH_TOLERANCE:
        return CpuTuning(model, {**details, "applied": False, "why": "outputs differ"})
    p50 = _p50s(sessions, graph_batches(model, calibration, 1)[0])
    details["float_p50_ms_one_thread"] = {k: round(v, 3) for k, v in p50.items()}
    if p50["rewritten"] >= p50["as_exported"]:
        return CpuTuning(model, {**details, "applied": False, "why": "not faster here"})
    return CpuTuning(trial, {**details, "applied": True, "why": "equal outputs, faster here"})
