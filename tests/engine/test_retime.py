"""Re-timing contenders side by side (compressor/measure/retime.py): alternating fresh-process
runs, the lowest p50 of each, on the same inputs the jobs were measured on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compressor.inputs import EvalInputs
from compressor.measure.retime import retime
from compressor.measure.settings import MeasureSettings

WIDTH = 256


def _chain(path: Path, matmuls: int) -> Path:
    """x @ W, ``matmuls`` times over: work in proportion to the count."""
    rng = np.random.default_rng(matmuls)
    weight = (rng.standard_normal((WIDTH, WIDTH)) / WIDTH**0.5).astype(np.float32)
    nodes, previous = [], "x"
    for i in range(matmuls):
        nodes.append(helper.make_node("MatMul", [previous, "w"], [f"h{i}"]))
        previous = f"h{i}"
    nodes.append(helper.make_node("Identity", [previous], ["y"]))
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", WIDTH])],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def test_each_contender_gets_its_lowest_p50_and_the_heavier_times_slower(
    tmp_path: Path,
) -> None:
    models = {"light": _chain(tmp_path / "light.onnx", 1), "heavy": _chain(tmp_path / "h.onnx", 64)}
    inputs = EvalInputs({"x": np.ones((32, WIDTH), np.float32)}, source="test")
    settings = MeasureSettings(threads=1, warmup=2, iterations=10)
    timed = retime(
        models, runtime="onnxruntime", inputs=inputs, batch_size=32, settings=settings, rounds=2
    )
    assert set(timed) == {"light", "heavy"}
    # 64 times the work: even a noisy neighbour cannot close that gap.
    assert timed["heavy"] > 8 * timed["light"] > 0, timed
