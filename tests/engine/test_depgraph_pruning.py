"""Structured pruning of graphs that are not chains: residual adds, BatchNorm, concat, grouped
and depthwise convolutions, squeeze-excitation, flatten into a head. Every pruned model is
exported to ONNX, its initializers read back, and the file run in onnxruntime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torchvision  # a hard dependency (pyproject): missing, the module fails, never skips
from onnx import numpy_helper
from torch import nn

from compressor.errors import UnsupportedModelError
from compressor.formats.onnx_io import export_onnx
from compressor.inputs import EvalInputs
from compressor.target import Target
from compressor.techniques.base import ModelState, StepContext, handler_for
from compressor.techniques.pruning.structured import StructuredPruningConfig


class ResidualCNN(nn.Module):
    """Stem, a residual block whose add couples the stem's channels to its second conv's, a
    grouped conv, a concat of two branches read by a 1x1 conv, then flatten into a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.conv1 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.grouped = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.left = nn.Conv2d(16, 8, 1)
        self.right = nn.Conv2d(16, 8, 3, padding=1)
        self.mix = nn.Conv2d(16, 16, 1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        x = torch.relu(self.grouped(x))
        x = self.mix(torch.cat([self.left(x), self.right(x)], dim=1))
        return self.head(torch.flatten(self.pool(x), 1))  # type: ignore[no-any-return]


def _randomise_batchnorm(model: nn.Module) -> nn.Module:
    """Non-trivial running statistics and affine terms, so a BatchNorm cut wrongly shows."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
    return model.eval()


def _apply(model: nn.Module, x: torch.Tensor, **config: Any) -> dict[str, Any]:
    cfg = StructuredPruningConfig(**config)
    ctx = StepContext(target=Target(), calibration=EvalInputs({"input": x.numpy()}, "example"))
    state = ModelState(module=model, source_dir=Path("."), workdir=Path("."))
    handler_for(cfg).check(cfg, Target())
    return handler_for(cfg).apply(cfg, state, ctx)


def _onnx_weights(model: nn.Module, x: torch.Tensor, path: Path) -> dict[str, tuple[int, ...]]:
    """Export, check the file runs in onnxruntime like torch, and return each Conv/Gemm/MatMul
    weight's shape by its node's position in the graph."""
    # Named after the forward's parameter: the exporter calls the model by keyword.
    export_onnx(model, {"x": x.numpy()}, path, output_name="output", sequence_axis=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x).numpy(), rtol=1e-4, atol=1e-4)
    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i).shape for i in graph.initializer}
    shapes = {}
    for index, node in enumerate(graph.node):
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            weight = next((inits[n] for n in node.input[1:2] if n in inits), None)
            if weight is not None:
                shapes[f"{index}:{node.op_type}"] = tuple(weight)
    return shapes


def _conv_out(shapes: dict[str, tuple[int, ...]]) -> list[int]:
    return [s[0] for k, s in shapes.items() if k.endswith("Conv")]


class TestResidualCNN:
    def test_half_the_channels_go_and_the_onnx_file_is_narrower(self, tmp_path: Path) -> None:
        torch.manual_seed(0)
        model = _randomise_batchnorm(ResidualCNN())
        x = torch.randn(4, 1, 8, 8)
        before = _onnx_weights(model, x, tmp_path / "before.onnx")
        report = _apply(model, x, amount=0.5)
        after = _onnx_weights(model, x, tmp_path / "after.onnx")
        assert _conv_out(before) == [16, 16, 16, 16, 8, 8, 16]
        assert _conv_out(after) == [8, 8, 8, 8, 4, 4, 8]
        # The residual add: the stem and conv2 lost the same channels, and their BatchNorms too.
        assert model.stem[0].out_channels == model.conv2.out_channels == model.bn2.num_features
        assert model.stem[1].running_mean.shape == (8,)
        # Grouped conv keeps its 4 groups, each half as wide.
        assert model.grouped.groups == 4 and model.grouped.weight.shape == (8, 2, 3, 3)
        # The concat of two 4-channel branches feeds mix as 8 channels, at their offsets.
        assert model.mix.weight.shape == (8, 8, 1, 1)
        assert model.head.weight.shape == (10, 8 * 4 * 4)  # 8 channels of 4x4 columns
        assert report["layers_not_pruned"] == {"head": "its outputs are the model's outputs"}
        assert report["units"]["conv1"] == {"before": 16, "after": 8}
        assert report["parameters_after"] < report["parameters_before"] / 3

    def test_dead_channels_go_without_changing_any_output(self, tmp_path: Path) -> None:
        torch.manual_seed(0)
        model = _randomise_batchnorm(ResidualCNN())
        with torch.no_grad():
            # Residual-stream channels 2 and 5 are read by conv1 and by the grouped conv only.
            model.conv1.weight[:, [2, 5]] = 0.0
            model.grouped.weight.view(4, 4, 4, 3, 3)[0, :, [2]] = 0.0  # group 0 reads 0..3
            model.grouped.weight.view(4, 4, 4, 3, 3)[1, :, [1]] = 0.0  # group 1 reads 4..7
            model.conv2.weight[:, 11] = 0.0  # conv1's channel 11 is read by nobody
        x = torch.randn(16, 1, 8, 8)
        with torch.no_grad():
            expected = model(x)
        report = _apply(model, x, dead_only=True)
        assert model.conv1.weight.shape == (15, 16, 3, 3)
        with torch.no_grad():
            torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
        assert report["units"]["conv1"] == {"before": 16, "after": 15}
        # A grouped consumer could read a channel unseen through its group layout: left alone.
        assert model.stem[0].out_channels == 16
        shapes = _onnx_weights(model, x, tmp_path / "dead.onnx")
        assert _conv_out(shapes)[1] == 15


class ConcatIntoFlatten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Conv2d(1, 8, 1)
        self.right = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(torch.cat([self.left(x), self.right(x)], dim=1), 1))  # type: ignore[no-any-return]


def test_a_coupling_dependency_graph_misses_is_refused_not_delivered() -> None:
    """torch-pruning 1.6 couples the two halves of a concat read only through a flatten as if
    added, and cuts the head's columns wrongly; the step must say so rather than ship it."""
    x = torch.randn(2, 1, 8, 8)
    try:
        report = _apply(ConcatIntoFlatten().eval(), x, amount=0.5)
    except UnsupportedModelError as exc:
        assert "does not run" in str(exc) or "output shapes" in str(exc)
    else:  # a fixed torch-pruning: then the cut must be the right one
        assert report["units"]["left"] == {"before": 8, "after": 4}


@pytest.fixture
def resnet18() -> nn.Module:
    torch.manual_seed(0)
    return _randomise_batchnorm(torchvision.models.resnet18(num_classes=10))


class TestTorchvision:
    def test_resnet18_halved_through_every_residual_stage(
        self, resnet18: nn.Module, tmp_path: Path
    ) -> None:
        x = torch.randn(2, 3, 32, 32)
        before = _onnx_weights(resnet18, x, tmp_path / "before.onnx")
        report = _apply(resnet18, x, amount=0.5)
        after = _onnx_weights(resnet18, x, tmp_path / "after.onnx")
        assert len(after) == len(before) == 21  # 20 convs and the fc
        assert _conv_out(after) == [c // 2 for c in _conv_out(before)]
        assert resnet18.fc.weight.shape == (10, 256)  # the head reads half, still writes 10
        assert report["parameters_after"] < report["parameters_before"] * 0.3

    def test_resnet18_dead_channels_removed_exactly(
        self, resnet18: nn.Module, tmp_path: Path
    ) -> None:
        with torch.no_grad():
            resnet18.layer1[0].conv2.weight[:, [3, 7]] = 0.0  # inside a block
            # A layer4 residual-stream channel: read only by layer4[1].conv1 and fc.
            resnet18.layer4[1].conv1.weight[:, 100] = 0.0
            resnet18.fc.weight[:, 100] = 0.0
        x = torch.randn(4, 3, 32, 32)
        with torch.no_grad():
            expected = resnet18(x)
        report = _apply(resnet18, x, dead_only=True)
        with torch.no_grad():
            torch.testing.assert_close(resnet18(x), expected, rtol=1e-4, atol=1e-4)
        assert report["units"]["layer1.0.conv1"] == {"before": 64, "after": 62}
        # The add couples three producers: all lose channel 100, and the head its column.
        for name in ("layer4.0.conv2", "layer4.0.downsample.0", "layer4.1.conv2"):
            assert report["units"][name] == {"before": 512, "after": 511}
        assert resnet18.fc.weight.shape == (10, 511)
        assert len(report["units"]) == 4
        _onnx_weights(resnet18, x, tmp_path / "dead.onnx")

    def test_mobilenet_v3_small_depthwise_and_squeeze_excitation(self, tmp_path: Path) -> None:
        torch.manual_seed(0)
        model = _randomise_batchnorm(torchvision.models.mobilenet_v3_small(num_classes=10))
        x = torch.randn(2, 3, 64, 64)
        before = _onnx_weights(model, x, tmp_path / "before.onnx")
        report = _apply(model, x, amount=0.5)
        after = _onnx_weights(model, x, tmp_path / "after.onnx")
        depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
        # Each depthwise conv follows its producer: one filter per remaining channel.
        assert depthwise and all(
            m.groups == m.in_channels == m.out_channels and m.weight.shape[1] == 1
            for m in depthwise
        )
        assert sum(np.prod(s) for s in after.values()) < 0.4 * sum(
            np.prod(s) for s in before.values()
        )
        assert report["layers_not_pruned"] == {
            "classifier.3": "its outputs are the model's outputs"
        }
