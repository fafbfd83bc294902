"""A Resize whose scales an exporter computes from constants (torch's opset-12 interpolate,
Paddle2ONNX) converts to torch and exports back to ONNX with dynamic height and width: the
constants are folded (compressor/formats/onnx_fold.py) and the Resize made static
(compressor/formats/torch_static.py), so torch.export has nothing data-dependent to trace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from compressor.formats.onnx_torch import torch_from_onnx
from compressor.formats.torch_static import StaticResize


def _graph(path: Path) -> Path:
    weight = np.random.default_rng(0).standard_normal((4, 1, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Constant", [], ["keep"], value=numpy_helper.from_array(
            np.array([1.0, 1.0], np.float32))),
        helper.make_node("Constant", [], ["double"], value=numpy_helper.from_array(
            np.array([2.0, 2.0], np.float32))),
        helper.make_node("Concat", ["keep", "double"], ["scales"], axis=0),
        helper.make_node("Constant", [], ["roi"], value=numpy_helper.from_array(
            np.array([], np.float32))),
        helper.make_node("Resize", ["c", "roi", "scales"], ["y"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "computed-resize",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, "H2", "W2"])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


def test_computed_scales_export_back_with_dynamic_height_and_width(tmp_path: Path) -> None:
    upload = _graph(tmp_path / "upload.onnx")
    conversion = torch_from_onnx(upload, input_names=["x"])
    assert any(isinstance(m, StaticResize) for m in conversion.module.modules())
    example = {"x": np.zeros((2, 1, 8, 8), np.float32)}
    conversion.export(conversion.module, example, tmp_path / "back.onnx")

    x = np.random.default_rng(1).standard_normal((3, 1, 12, 10)).astype(np.float32)
    expected = ort.InferenceSession(str(upload)).run(None, {"x": x})[0]
    back = ort.InferenceSession(str(tmp_path / "back.onnx"))
    assert [isinstance(d, str) for d in back.get_inputs()[0].shape] == [True, False, True, True]
    got = back.run(None, {"x": x})[0]
    assert got.shape == (3, 4, 24, 20)
    np.testing.assert_allclose(got, expected, atol=1e-5)
