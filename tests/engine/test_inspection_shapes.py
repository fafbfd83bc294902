"""Inspection checks the torch conversion at input shapes the network can take.

The graphs are small stand-ins for a detector with dynamic batch, height and width: strided
convolutions, a Resize back to the input's size and an Add with the input (the skip branch), so
8x8 and sizes that are not a multiple of the stride fail in ONNX Runtime itself.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from compressor.errors import InvalidRecipeError, UnsupportedModelError
from compressor.formats.detect import inspect_model_dir
from compressor.formats.onnx_torch import check_on_inputs, convert_to_torch, inspect_conversion
from compressor.formats.probe_shapes import candidate_specs, spatial_axes
from compressor.recipe import Recipe, check_recipe_for_kind
from compressor.target import Target

TARGET = Target(runtime="onnxruntime", device="cpu", batch_size=1)
LOW_RANK = Recipe.model_validate({"steps": [{"technique": "low_rank"}]})
STRIDES = 4  # total stride 16: 8x8 shrinks to 1x1 and comes back as 16x16


def _strided_net(tail: list[onnx.NodeProto], extra: list[onnx.TensorProto]) -> onnx.ModelProto:
    """x [N, 3, H, W] -> four stride-2 convs -> Resize x16 -> + x -> tail -> y."""
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], list(extra), "x"
    for i in range(STRIDES):
        weight = rng.standard_normal((3, 3, 3, 3)).astype(np.float32) * 0.3
        inits.append(numpy_helper.from_array(weight, f"w{i}"))
        nodes.append(
            helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], strides=[2, 2], pads=[1, 1, 1, 1])
        )
        prev = f"c{i}"
    scale = float(2**STRIDES)
    inits.append(numpy_helper.from_array(np.asarray([1, 1, scale, scale], np.float32), "scales"))
    nodes += [
        helper.make_node("Resize", [prev, "", "scales"], ["up"], mode="nearest"),
        helper.make_node("Add", ["up", "x"], ["skip"]),
        *tail,
    ]
    dims = ["N", 3, "H", "W"]
    graph = helper.make_graph(
        nodes,
        "strided",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, dims)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _inspect(model: onnx.ModelProto, tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "upload"
    root.mkdir()
    onnx.save(model, str(root / "model.onnx"))
    inspection = inspect_model_dir(root)
    return inspect_conversion(root, inspection)


def test_inspection_finds_a_shape_the_network_runs_at(tmp_path: Path) -> None:
    found = _inspect(_strided_net([helper.make_node("Relu", ["skip"], ["y"])], []), tmp_path)
    assert found["convertible"] is True, found
    assert found["inputs_checked_shape"] == {"x": [2, 3, 32, 32]}
    assert found["max_abs_diff"] < 1e-4
    check_recipe_for_kind(LOW_RANK, "onnx", TARGET, inspection={"torch_conversion": found})


def test_no_shape_running_in_ort_is_unknown_not_refused(tmp_path: Path) -> None:
    # The graph only takes 112x112 (a fixed-size bias), a size no probe tries.
    bias = numpy_helper.from_array(np.ones((1, 3, 112, 112), np.float32), "bias")
    model = _strided_net([helper.make_node("Add", ["skip", "bias"], ["y"])], [bias])
    found = _inspect(model, tmp_path)
    assert found["convertible"] is None, found
    assert "inputs_checked_shape" not in found
    assert "x [2, 3, 32, 32]" in found["reason"] and "x [2, 3, 320, 320]" in found["reason"]
    assert "Add" in found["reason"]  # ONNX Runtime's error says which node failed
    assert len(found["shapes_failed"]) == 5
    assert all("\n" not in f["error"] and len(f["error"]) <= 200 for f in found["shapes_failed"])
    check_recipe_for_kind(LOW_RANK, "onnx", TARGET, inspection={"torch_conversion": found})
    # The job's own data is the check then; at a size the graph takes, the conversion matches.
    module, _details = convert_to_torch(model)
    path = tmp_path / "upload" / "model.onnx"
    check_on_inputs(path, module, {"x": np.ones((1, 3, 112, 112), np.float32)})
    with pytest.raises(UnsupportedModelError, match=r"inputs of shape x \[1, 3, 96, 96\]"):
        check_on_inputs(path, module, {"x": np.ones((1, 3, 96, 96), np.float32)})


def test_a_blocking_op_is_refused_without_running_the_graph(tmp_path: Path) -> None:
    found = _inspect(_strided_net([helper.make_node("Shrink", ["skip"], ["y"])], []), tmp_path)
    assert found["convertible"] is False, found
    assert found["blocking_ops"] == ["Shrink@17"]
    # refused from the graph alone: a graph no converter takes is never run in the inspection
    assert "inputs_checked_shape" not in found
    with pytest.raises(InvalidRecipeError, match=r"no converter for Shrink@17\): "):
        check_recipe_for_kind(LOW_RANK, "onnx", TARGET, inspection={"torch_conversion": found})


def test_image_axes_follow_the_channel_position() -> None:
    assert spatial_axes([None, 3, None, None]) == (2, 3)
    assert spatial_axes(["N", None, None, 1]) == (1, 2)
    assert spatial_axes([None, 3, 32, 32]) is None  # nothing dynamic to choose
    assert spatial_axes([None, 16]) is None
    specs = [{"name": "ids", "shape": [None, None], "dtype": "int64"}]
    assert candidate_specs(specs) == [[{**specs[0], "shape": [8, 8]}]]  # as before


def test_a_graph_that_runs_on_and_on_is_stopped_not_waited_for(tmp_path: Path) -> None:
    """Issue 23: inspection runs an uploaded graph on generated inputs; one that never ends
    (a Loop of 10^15 trips) is stopped at the run limit and no other shape is tried."""
    from compressor.formats.probe_shapes import probe_inputs
    from tests.fixtures.onnx_graphs import endless_loop

    path = tmp_path / "endless.onnx"
    path.write_bytes(endless_loop())
    specs = [{"name": "x", "shape": [None, 4], "dtype": "float32"}]
    started = time.monotonic()
    probe = probe_inputs(path, specs, rows=2, run_limit_s=1.0)
    assert time.monotonic() - started < 10
    assert probe.feed is None and len(probe.failures) == 1
    assert "within 1 s and was stopped" in probe.failures[0]["error"]
