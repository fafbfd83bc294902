"""The exact CPU rewrites (compressor/techniques/quantization/cpu_rewrites.py) on small graphs
built here: what they change, what they leave alone, and that ORT then runs other kernels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from compressor.inputs import EvalInputs
from compressor.techniques.quantization.cpu_rewrites import (
    MASK_VALUE,
    soften_attention_masks,
    tune_for_cpu,
    unfuse_residual_layer_norms,
)

LOWEST = float(np.finfo(np.float32).min)
HEADS, SEQ, DIM = 4, 128, 32


def _model(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]) -> onnx.ModelProto:
    inputs = [
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, HEADS, SEQ, SEQ]),
        helper.make_tensor_value_info("mask", TensorProto.INT64, [1, SEQ]),
        helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, HEADS, SEQ, DIM]),
    ]
    out = [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "attention", inputs, out, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    return model


def _masked_attention(*, where_selects_scores: bool = False) -> onnx.ModelProto:
    """scores + Where(mask, 0, lowest) -> Softmax -> @ v, as transformers exports padding."""
    inits = [
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(LOWEST, np.float32), "lowest"),
        numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
    ]
    nodes = [
        helper.make_node("Cast", ["mask"], ["keep"], to=TensorProto.BOOL),
        helper.make_node("Unsqueeze", ["keep", "axes"], ["keep4"]),
    ]
    if where_selects_scores:
        nodes.append(helper.make_node("Where", ["keep4", "scores", "lowest"], ["masked"]))
    else:
        nodes += [
            helper.make_node("Where", ["keep4", "zero", "lowest"], ["additive"]),
            helper.make_node("Add", ["scores", "additive"], ["masked"]),
        ]
    nodes += [
        helper.make_node("Softmax", ["masked"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["out"]),
    ]
    return _model(nodes, inits)


def _feed(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.zeros((1, SEQ), np.int64)
    mask[0, :12] = 1  # a short sentence padded to 128 tokens
    return {
        "scores": rng.normal(size=(1, HEADS, SEQ, SEQ)).astype(np.float32),
        "mask": mask,
        "v": rng.normal(size=(1, HEADS, SEQ, DIM)).astype(np.float32),
    }


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return np.asarray(session.run(None, {k: v for k, v in feed.items() if k in names})[0])


def test_additive_mask_is_softened_with_equal_outputs() -> None:
    model = _masked_attention()
    before = _run(model, _feed())
    assert soften_attention_masks(model) == 1
    where = next(n for n in model.graph.node if n.op_type == "Where")
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert float(inits[where.input[2]]) == MASK_VALUE
    assert "lowest" not in inits  # no node reads it now (ORT would warn at every load)
    after = _run(model, _feed())
    # A masked weight of at most e^-60 adds nothing in float32.
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-7)


def test_mask_selected_by_where_is_left_alone() -> None:
    """Where(mask, scores, lowest) replaces the score: a finite value there is not relative
    to the row, so it could outweigh live positions."""
    model = _masked_attention(where_selects_scores=True)
    assert soften_attention_masks(model) == 0


def test_constant_used_beyond_the_mask_is_not_changed() -> None:
    model = _masked_attention()
    model.graph.output.append(helper.make_tensor_value_info("additive", TensorProto.FLOAT, None))
    assert soften_attention_masks(model) == 0


def _residual_layer_norm(bias_add: bool) -> onnx.ModelProto:
    shape = [1, 16, 64]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("x", "r")]
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)]
    inits = [
        numpy_helper.from_array(np.linspace(0.5, 1.5, 64, dtype=np.float32), "gamma"),
        numpy_helper.from_array(np.linspace(-0.1, 0.1, 64, dtype=np.float32), "beta"),
        numpy_helper.from_array(np.full(64, 0.25, np.float32), "bias"),
    ]
    nodes = []
    first = "x"
    if bias_add:
        nodes.append(helper.make_node("Add", ["x", "bias"], ["xb"]))
        first = "xb"
    nodes += [
        helper.make_node("Add", [first, "r"], ["sum"]),
        helper.make_node(
            "LayerNormalization", ["sum", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-12
        ),
    ]
    graph = helper.make_graph(nodes, "residual", inputs, out, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    return model


def _ops_after_ort(model: onnx.ModelProto, tmp: Path) -> list[str]:
    """Op types of the graph ORT actually runs, after its session-time fusions."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp)
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(str(tmp)).graph.node]


def test_residual_add_becomes_sum_and_ort_keeps_layer_norm(tmp_path: Path) -> None:
    model = _residual_layer_norm(bias_add=True)
    rng = np.random.default_rng(1)
    feed = {k: rng.normal(size=(1, 16, 64)).astype(np.float32) for k in ("x", "r")}
    before = _run(model, feed)
    assert "SkipLayerNormalization" in _ops_after_ort(model, tmp_path / "plain.onnx")
    assert unfuse_residual_layer_norms(model) == 1
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["Add", "Sum", "LayerNormalization"]  # the bias add stays an Add
    ran = _ops_after_ort(model, tmp_path / "rewritten.onnx")
    assert "SkipLayerNormalization" not in ran and "LayerNormalization" in ran
    np.testing.assert_allclose(_run(model, feed), before, rtol=1e-5, atol=1e-6)


def test_tune_for_cpu_keeps_the_rewrite_that_measures_faster() -> None:
    """Padded rows make the original mask's exp() subnormal: about 10x slower Softmax on x86."""
    model = _masked_attention()
    feed = _feed()
    rows = {k: np.concatenate([v, v]) for k, v in feed.items()}
    tuned = tune_for_cpu(model, EvalInputs(rows, "two padded rows"))
    details = tuned.details
    assert tuned.found and details["attention_masks_softened"] == 1, details
    assert details["float_outputs_largest_relative_difference"] <= 1e-4, details
    p50 = details["float_p50_ms_one_thread"]
    assert details["applied"] == (p50["rewritten"] < p50["as_exported"]), details
    assert details["applied"], details
    assert tuned.model is not model
    np.testing.assert_allclose(_run(tuned.model, feed), _run(model, feed), rtol=1e-6, atol=1e-7)


def test_tune_for_cpu_without_candidates_returns_the_graph() -> None:
    model = _masked_attention(where_selects_scores=True)
    tuned = tune_for_cpu(model, EvalInputs(_feed(), "one row"))
    assert not tuned.found and tuned.model is model
