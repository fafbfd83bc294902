"""Static int8 on graphs in the style of other frameworks' exporters, not our torch exports.

tensorflow/tf2onnx and paddle2onnx are not installable here, so the graphs are built by hand
with ``onnx.helper`` to reproduce what those exporters emit: fixed batch 1, opset 11 or 12,
their layouts, op choices and tensor names. The conv weights are random with a fixed seed,
BatchNorm statistics are those of the data (as training leaves them); the classifier head is fitted by least squares on the digits training split, so the graph
is a real (if small) classifier whose predictions quantization can visibly break. Every
assertion is on the saved artifact, run in onnxruntime on held-out digits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compressor.measure.settings import MeasureSettings
from compressor.pipeline import compress_model
from compressor.recipe import Recipe
from compressor.target import Target
from scripts.train_digits import digits_split
from tests.fixtures.onnx_graphs import int8_convs
from tests.fixtures.onnx_graphs import opset as opset_of

FAST = MeasureSettings(warmup=1, iterations=3)
TARGET = Target(runtime="onnxruntime", batch_size=8)
INT8_STATIC = Recipe.model_validate(
    {"steps": [{"technique": "quantization", "scheme": "int8_static"}]}
)
CALIBRATION_ROWS = 200
EVAL_ROWS = 120
FIT_ROWS = 600


@dataclass(frozen=True)
class Exported:
    """A graph as another exporter writes it, with its input and output names."""

    model: onnx.ModelProto
    input: str
    output: str
    layout: str  # "NHWC" (TensorFlow) or "NCHW" (Paddle)


def _rng() -> np.random.Generator:
    return np.random.default_rng(16)


def _conv_weight(rng: np.random.Generator, out_c: int, in_c: int, k: int) -> np.ndarray:
    fan_in = in_c * k * k
    return (rng.standard_normal((out_c, in_c, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def _tensor(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _tf2onnx_body(rng: np.random.Generator) -> tuple[list, list, str, int]:
    """TF Keras conv stack as tf2onnx writes it: NHWC in, Transpose to NCHW around the convs,
    Conv with bias + Relu + MaxPool, Transpose back, Reshape to [1, -1] by a shape constant."""
    inits = [
        _tensor("model/conv2d/Conv2D/ReadVariableOp:0", _conv_weight(rng, 8, 1, 3)),
        _tensor("model/conv2d/BiasAdd/ReadVariableOp:0", rng.normal(0, 0.05, 8).astype("f4")),
        _tensor("model/conv2d_1/Conv2D/ReadVariableOp:0", _conv_weight(rng, 16, 8, 3)),
        _tensor("model/conv2d_1/BiasAdd/ReadVariableOp:0", rng.normal(0, 0.05, 16).astype("f4")),
        _tensor("const_fold_opt__12", np.array([1, -1], dtype=np.int64)),
    ]
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [1, 1]}
    nodes = [
        helper.make_node("Transpose", ["input_1:0"], ["nchw"], "Transpose__6", perm=[0, 3, 1, 2]),
        helper.make_node(
            "Conv",
            ["nchw", inits[0].name, inits[1].name],
            ["c1"],
            "model/conv2d/BiasAdd",
            **conv,
        ),
        helper.make_node("Relu", ["c1"], ["r1"], "model/conv2d/Relu"),
        helper.make_node(
            "MaxPool",
            ["r1"],
            ["p1"],
            "model/max_pooling2d/MaxPool",
            kernel_shape=[2, 2],
            strides=[2, 2],
        ),
        helper.make_node(
            "Conv", ["p1", inits[2].name, inits[3].name], ["c2"], "model/conv2d_1/BiasAdd", **conv
        ),
        helper.make_node("Relu", ["c2"], ["r2"], "model/conv2d_1/Relu"),
        helper.make_node("Transpose", ["r2"], ["nhwc"], "Transpose__18", perm=[0, 2, 3, 1]),
        helper.make_node(
            "Reshape", ["nhwc", "const_fold_opt__12"], ["features"], "model/flatten/Reshape"
        ),
    ]
    return nodes, inits, "features", 4 * 4 * 16


def _tf2onnx_head(w: np.ndarray, b: np.ndarray) -> tuple[list, list]:
    """A Keras Dense as tf2onnx writes it: MatMul + Add (not Gemm), then Softmax."""
    inits = [
        _tensor("model/dense/MatMul/ReadVariableOp:0", w),
        _tensor("model/dense/BiasAdd/ReadVariableOp:0", b),
    ]
    nodes = [
        helper.make_node("MatMul", ["features", inits[0].name], ["mm"], "model/dense/MatMul"),
        helper.make_node("Add", ["mm", inits[1].name], ["logits"], "model/dense/BiasAdd"),
        helper.make_node("Softmax", ["logits"], ["Identity:0"], "model/dense/Softmax", axis=1),
    ]
    return nodes, inits


def _batchnorm(rng: np.random.Generator, name: str, x: str, channels: int) -> tuple[list, list]:
    """Paddle exports BatchNorm unfolded after each bias-free Conv."""
    params = {
        "scale": rng.uniform(0.6, 1.4, channels),
        "bias": rng.normal(0, 0.1, channels),
        "mean": rng.normal(0, 0.1, channels),
        "var": rng.uniform(0.5, 1.5, channels),
    }
    inits = [_tensor(f"{name}.{k}", v.astype(np.float32)) for k, v in params.items()]
    node = helper.make_node(
        "BatchNormalization", [x, *(i.name for i in inits)], [f"{name}.out"], name, epsilon=1e-5
    )
    return [node], inits


def _hardswish(name: str, x: str) -> list:
    """HardSwish is an ONNX op only from opset 14; paddle2onnx writes it at opset 12 as
    x * HardSigmoid(x, alpha=1/6, beta=0.5)."""
    return [
        helper.make_node(
            "HardSigmoid", [x], [f"{name}.hs"], f"{name}.hardsigmoid", alpha=1 / 6, beta=0.5
        ),
        helper.make_node("Mul", [x, f"{name}.hs"], [f"{name}.out"], f"{name}.mul"),
    ]


def _conv_bn(
    rng: np.random.Generator, name: str, x: str, shape: tuple[int, int, int], stride: int
) -> tuple[list, list, str]:
    out_c, in_c, k = shape
    weight = _tensor(f"{name}_weights", _conv_weight(rng, out_c, in_c, k))
    pad = k // 2
    conv = helper.make_node(
        "Conv",
        [x, weight.name],
        [f"{name}.conv"],
        f"{name}.conv2d",
        kernel_shape=[k, k],
        pads=[pad] * 4,
        strides=[stride, stride],
    )
    bn_nodes, bn_inits = _batchnorm(rng, f"{name}_bn", f"{name}.conv", out_c)
    return [conv, *bn_nodes], [weight, *bn_inits], f"{name}_bn.out"


def _paddle_body(rng: np.random.Generator) -> tuple[list, list, str, int]:
    """A PaddleOCR-like block: Conv+BN+HardSwish, a strided branch upsampled by Resize
    (nearest, by a scales input) and concatenated back, Conv+BN+HardSwish, then
    GlobalAveragePool + Flatten."""
    n1, i1, a = _conv_bn(rng, "conv1", "x", (8, 1, 3), 1)
    n2, i2, b = _conv_bn(rng, "conv2", "conv1_hsw.out", (16, 8, 3), 2)
    n3, i3, c = _conv_bn(rng, "conv3", "concat.out", (48, 24, 1), 1)
    inits = [
        *i1,
        *i2,
        *i3,
        _tensor("resize.roi", np.array([], dtype=np.float32)),
        _tensor("resize.scales", np.array([1, 1, 2, 2], dtype=np.float32)),
    ]
    nodes = [
        *n1,
        *_hardswish("conv1_hsw", a),
        *n2,
        *_hardswish("conv2_hsw", b),
        helper.make_node(
            "Resize",
            ["conv2_hsw.out", "resize.roi", "resize.scales"],
            ["up"],
            "nearest_interp_v2_0",
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        ),
        helper.make_node("Concat", ["conv1_hsw.out", "up"], ["concat.out"], "concat_0", axis=1),
        *n3,
        *_hardswish("conv3_hsw", c),
        helper.make_node("GlobalAveragePool", ["conv3_hsw.out"], ["pooled"], "pool2d_0"),
        helper.make_node("Flatten", ["pooled"], ["features"], "flatten_0", axis=1),
    ]
    return nodes, inits, "features", 48


def _paddle_head(w: np.ndarray, b: np.ndarray) -> tuple[list, list]:
    """paddle.nn.Linear exported as Gemm; the weight stored [in, out] as Paddle keeps it."""
    inits = [_tensor("linear_0.w_0", w), _tensor("linear_0.b_0", b)]
    node = helper.make_node(
        "Gemm",
        ["features", "linear_0.w_0", "linear_0.b_0"],
        ["save_infer_model/scale_0.tmp_0"],
        "linear_0",
    )
    return [node], inits


def _graph(
    nodes: list, inits: list, inp: tuple[str, list[int]], out: tuple[str, int], opset: int
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "exported",
        [helper.make_tensor_value_info(inp[0], TensorProto.FLOAT, inp[1])],
        [helper.make_tensor_value_info(out[0], TensorProto.FLOAT, [1, out[1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7  # what onnx 1.8-era exporters wrote for opset 11/12
    onnx.checker.check_model(model, full_check=True)
    return model


def _run_rows(model: onnx.ModelProto | Path, name: str, x: np.ndarray) -> np.ndarray:
    """One row at a time: the graph takes a fixed batch of 1."""
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    out = session.get_outputs()[0].name
    return np.concatenate([session.run([out], {name: x[i : i + 1]})[0] for i in range(len(x))])


def _fit_head(
    body: onnx.ModelProto, name: str, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares fit of a linear head on the body's features to one-hot labels."""
    feats = _run_rows(body, name, x).astype(np.float64)
    design = np.hstack([feats, np.ones((len(feats), 1))])
    target = np.eye(10)[y] * 4.0  # sharper logits, so Softmax does not flatten them
    coef = np.linalg.lstsq(design.T @ design + 1e-1 * np.eye(design.shape[1]), design.T @ target)
    w = coef[0]
    return w[:-1].astype(np.float32), w[-1].astype(np.float32)


def _data_batchnorm(
    nodes: list, inits: list, inp: tuple[str, list[int]], x: np.ndarray, opset: int
) -> None:
    """Each BatchNorm's running statistics set to its input's on ``x``, in graph order, as
    training leaves them (in place). Random statistics squash the features far below what
    uint8 activations resolve, which no trained network does."""
    for node in [n for n in nodes if n.op_type == "BatchNormalization"]:
        graph = helper.make_graph(
            nodes,
            "probe",
            [helper.make_tensor_value_info(inp[0], TensorProto.FLOAT, inp[1])],
            [helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, None)],
            inits,
        )
        probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        probe.ir_version = 7
        features = _run_rows(probe, inp[0], x)
        stats = {node.input[3]: features.mean((0, 2, 3)), node.input[4]: features.var((0, 2, 3))}
        for i, tensor in enumerate(inits):
            if tensor.name in stats:
                inits[i] = _tensor(tensor.name, stats[tensor.name].astype(np.float32))


BodyFn = Callable[[np.random.Generator], tuple[list, list, str, int]]
HeadFn = Callable[[np.ndarray, np.ndarray], tuple[list, list]]


def _build(
    body_fn: BodyFn, head_fn: HeadFn, *, inp: tuple[str, list[int]], output: str, opset: int
) -> Exported:
    split = digits_split(image=True)
    layout = "NHWC" if inp[1][-1] == 1 else "NCHW"
    x_fit = _layout(split.x_train[:FIT_ROWS], layout)
    nodes, inits, features, width = body_fn(_rng())
    _data_batchnorm(nodes, inits, inp, x_fit, opset)
    body = _graph(nodes, inits, inp, (features, width), opset)
    w, b = _fit_head(body, inp[0], x_fit, split.y_train[:FIT_ROWS])
    head_nodes, head_inits = head_fn(w, b)
    model = _graph([*nodes, *head_nodes], [*inits, *head_inits], inp, (output, 10), opset)
    return Exported(model, inp[0], output, layout)


def _layout(x: np.ndarray, layout: str) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1) if layout == "NHWC" else x)


def tf2onnx_style() -> Exported:
    return _build(
        _tf2onnx_body, _tf2onnx_head, inp=("input_1:0", [1, 8, 8, 1]), output="Identity:0", opset=11
    )


def paddle_style() -> Exported:
    return _build(
        _paddle_body,
        _paddle_head,
        inp=("x", [1, 1, 8, 8]),
        output="save_infer_model/scale_0.tmp_0",
        opset=12,
    )


@pytest.mark.parametrize(
    ("make", "opset"),
    [
        pytest.param(tf2onnx_style, 11, id="tf2onnx"),
        # BatchNorm statistics from the data (_data_batchnorm): with random ones the features
        # had std ~0.01 over a ~1.1 range, below what uint8 resolves, and this case was xfail.
        pytest.param(paddle_style, 12, id="paddle"),
    ],
)
def test_other_exporters_graph_to_int8(
    make: Callable[[], Exported], opset: int, tmp_path: Path
) -> None:
    exported = make()
    split = digits_split(image=True)
    x_cal = _layout(split.x_train[-CALIBRATION_ROWS:], exported.layout)
    x_eval = _layout(split.x_eval[:EVAL_ROWS], exported.layout)
    upload = tmp_path / "up"
    upload.mkdir()
    onnx.save(exported.model, str(upload / "model.onnx"))
    # The hand-built graph is a working classifier, so agreement below means something.
    ref = _run_rows(upload / "model.onnx", exported.input, x_eval)
    assert float((ref.argmax(-1) == split.y_eval[:EVAL_ROWS]).mean()) > 0.7

    result = compress_model(
        upload,
        INT8_STATIC,
        target=TARGET,
        workdir=tmp_path / "work",
        settings=FAST,
        calibration_data={exported.input: x_cal},
        eval_data={exported.input: x_eval},
    )
    step = result.report["steps"][0]
    out = result.artifact_dir / "model.onnx"
    saved = onnx.load(str(out))
    assert opset_of(exported.model) == opset and opset_of(saved) >= 13
    assert step["graph_preparation"]["opset"] == {"upload": opset, "quantized": 13}
    convs = sum(1 for n in exported.model.graph.node if n.op_type == "Conv")
    assert int8_convs(saved) >= convs - len(step["layers_kept_in_float"]) > 0
    if opset == 12:  # Paddle's unfolded BatchNorm is folded before quantizing
        assert step["graph_preparation"]["batchnorm_folded"] == convs
        assert not [n for n in saved.graph.node if n.op_type == "BatchNormalization"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [exported.input]
    assert [o.name for o in session.get_outputs()] == [exported.output]
    declared = [d.dim_value for d in exported.model.graph.input[0].type.tensor_type.shape.dim]
    assert session.get_inputs()[0].shape == declared and declared[0] == 1
    got = _run_rows(out, exported.input, x_eval)
    agreement = float((ref.argmax(-1) == got.argmax(-1)).mean())
    bound = step["held_out_fidelity"]["bound"]["min_top1_agreement"]
    assert agreement >= bound, (agreement, step["held_out_fidelity"])
    assert step["held_out_fidelity"]["met"] is True
