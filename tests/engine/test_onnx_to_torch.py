"""ONNX uploads get the torch-stage techniques: the graph converts to torch (onnx2torch), the
step runs, and the artifact is ONNX again under the upload's input and output names with a
dynamic batch. A graph exported with a fixed batch of 1 is fed batches of 1 everywhere."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import helper, numpy_helper
from torch import nn

from compressor.errors import InvalidRecipeError
from compressor.formats.onnx_shapes import declared_batch
from compressor.formats.onnx_torch import conversion_check
from compressor.measure.settings import MeasureSettings
from compressor.pipeline import compress_model
from compressor.recipe import Recipe, check_recipe_for_kind
from compressor.target import Target

FAST = MeasureSettings(warmup=1, iterations=3)
TARGET = Target(runtime="onnxruntime", batch_size=8)
INPUT, OUTPUT = "pixels", "logits"


class _Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class ResidualCNN(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.blocks = nn.Sequential(_Block(width), _Block(width))
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(width * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def _model() -> ResidualCNN:
    torch.manual_seed(0)
    model = ResidualCNN()
    for m in model.modules():  # non-trivial BatchNorm statistics, as after training
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def dynamic_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The modern exporter, dynamic batch (opset 18+, BatchNorm folded by the exporter)."""
    path = tmp_path_factory.mktemp("dyn") / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            _model(),
            (torch.zeros(2, 1, 8, 8),),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True,
            verbose=False,
        )
    assert program is not None
    program.save(str(path))
    return path


@pytest.fixture(scope="module")
def fixed_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The legacy exporter with a fixed batch of 1, BatchNormalization nodes kept, opset 11."""
    path = tmp_path_factory.mktemp("fixed") / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _model(),
            (torch.zeros(1, 1, 8, 8),),
            str(path),
            input_names=[INPUT],
            output_names=[OUTPUT],
            opset_version=11,
            do_constant_folding=False,
            dynamo=False,
        )
    model = onnx.load(str(path))
    assert declared_batch(model) == 1
    assert "BatchNormalization" in {n.op_type for n in model.graph.node}
    return path


def _ort(path: Path, x: np.ndarray) -> tuple[np.ndarray, ort.InferenceSession]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {INPUT: x})[0]), session


def _images(n: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 1, 8, 8)).astype(np.float32)


def _compress(path: Path, tmp_path: Path, *steps: dict) -> tuple[Path, dict]:
    recipe = Recipe.model_validate({"steps": list(steps)})
    result = compress_model(path.parent, recipe, target=TARGET, workdir=tmp_path, settings=FAST)
    assert result.artifact_format == "onnx"
    return result.artifact_dir / "model.onnx", result.report


def _conv_out_channels(path: Path) -> list[int]:
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    return [
        int(inits[n.input[1]].dims[0])
        for n in model.graph.node
        if n.op_type == "Conv" and n.input[1] in inits
    ]


@pytest.mark.parametrize("fixture", ["dynamic_onnx", "fixed_onnx"])
def test_inspection_records_the_conversion(fixture: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(fixture)
    found = conversion_check(path, {INPUT: _images(1)})
    assert found["convertible"] is True, found
    assert found["blocking_ops"] == []
    assert 0.0 <= found["max_abs_diff"] < 1e-4


@pytest.mark.parametrize("fixture", ["dynamic_onnx", "fixed_onnx"])
def test_low_rank_on_an_onnx_upload(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path: Path = request.getfixturevalue(fixture)
    artifact, report = _compress(
        path, tmp_path, {"technique": "low_rank", "rank_by": "ratio", "ratio": 0.5}
    )
    x = _images(5)  # a batch the fixed-batch upload could not take: the axis is dynamic now
    out, session = _ort(artifact, x)
    assert [i.name for i in session.get_inputs()] == [INPUT]
    assert [o.name for o in session.get_outputs()] == [OUTPUT]
    assert isinstance(session.get_inputs()[0].shape[0], str)
    assert out.shape == (5, 10)
    assert report["steps"][0]["technique"] == "low_rank"
    assert report["compressed"]["parameters"] < report["original"]["parameters"]
    original = np.concatenate([_ort(path, x[i : i + 1])[0] for i in range(5)])
    assert not np.allclose(out, original)  # really the factorised model, not the upload


def test_structured_pruning_then_healing_distillation(dynamic_onnx: Path, tmp_path: Path) -> None:
    artifact, report = _compress(
        dynamic_onnx,
        tmp_path,
        {"technique": "structured_pruning", "amount": 0.5},
        {"technique": "distillation", "student": "current", "epochs": 1},
    )
    before, after = _conv_out_channels(dynamic_onnx), _conv_out_channels(artifact)
    assert sum(after) < sum(before), (before, after)
    out, _session = _ort(artifact, _images(4))
    assert out.shape == (4, 10) and np.isfinite(out).all()
    assert [s["technique"] for s in report["steps"]] == ["structured_pruning", "distillation"]


def test_int8_dynamic_on_a_fixed_batch_graph(fixed_onnx: Path, tmp_path: Path) -> None:
    artifact, report = _compress(
        fixed_onnx, tmp_path, {"technique": "quantization", "scheme": "int8_dynamic"}
    )
    model = onnx.load(str(artifact))
    assert any(
        i.data_type == onnx.TensorProto.INT8 or i.data_type == onnx.TensorProto.UINT8
        for i in model.graph.initializer
    )
    out, _session = _ort(artifact, _images(1))
    assert out.shape == (1, 10)
    assert report["original"]["batch_size"] == 1
    assert report["compressed"]["batch_size"] == 1
    assert any("fixed batch of 1" in w and "batch 8" in w for w in report["warnings"])
    np.testing.assert_allclose(out, _ort(fixed_onnx, _images(1))[0], atol=0.2)


def test_a_graph_that_cannot_convert_is_refused_naming_the_op(tmp_path: Path) -> None:
    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("Det", ["h"], ["y"]),
        ],
        "det",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [])],
        [weight],
    )
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    found = conversion_check(path, {"x": np.eye(4, dtype=np.float32)})
    assert found["convertible"] is False
    assert found["blocking_ops"] == ["Det@17"]
    recipe = Recipe.model_validate({"steps": [{"technique": "low_rank"}]})
    with pytest.raises(InvalidRecipeError, match="Det@17"):
        check_recipe_for_kind(recipe, "onnx", TARGET, inspection={"torch_conversion": found})
    quant = Recipe.model_validate(
        {"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]}
    )
    check_recipe_for_kind(quant, "onnx", TARGET, inspection={"torch_conversion": found})


def test_nm_sparsity_on_an_onnx_upload(dynamic_onnx: Path, tmp_path: Path) -> None:
    artifact, report = _compress(dynamic_onnx, tmp_path, {"technique": "nm_sparsity"})
    model = onnx.load(str(artifact))
    zeros = {
        i.name: float((numpy_helper.to_array(i) == 0).mean())
        for i in model.graph.initializer
        if len(i.dims) >= 2
    }
    assert max(zeros.values()) >= 0.5, zeros  # 2:4 zeroes half of each eligible weight
    assert report["compressed"]["nonzero_parameters"] < report["original"]["nonzero_parameters"]
    out, _session = _ort(artifact, _images(3))
    assert out.shape == (3, 10)
