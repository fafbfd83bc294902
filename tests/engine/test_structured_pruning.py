"""Structured pruning really shrinks layers: small torch chains here, MiniLM in the same file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from compressor.errors import InvalidRecipeError, UnsupportedModelError
from compressor.inputs import EvalInputs
from compressor.recipe import Recipe
from compressor.target import Target
from compressor.techniques.base import ModelState, StepContext, handler_for
from compressor.techniques.pruning.structured import StructuredPruningConfig


def _apply(
    model: nn.Module, config: StructuredPruningConfig, x: torch.Tensor | None = None
) -> dict:
    # The inputs are what DepGraph traces the model on, as a job's calibration set would be.
    tensors = {} if x is None else {"input": x.numpy()}
    ctx = StepContext(target=Target(), calibration=EvalInputs(tensors, "example"))
    state = ModelState(module=model, source_dir=Path("."), workdir=Path("."))
    handler_for(config).check(config, Target())
    return handler_for(config).apply(config, state, ctx)


def test_config_round_trip() -> None:
    config = StructuredPruningConfig(amount=0.3, importance="l1", heads=True)
    assert StructuredPruningConfig.model_validate(config.model_dump()) == config
    recipe = Recipe.model_validate({"steps": [{"technique": "structured_pruning"}]})
    assert isinstance(recipe.steps[0], StructuredPruningConfig)


def test_mlp_neurons_removed_and_consumers_shrink() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 300),
        nn.ReLU(),
        nn.Linear(300, 100),
        nn.BatchNorm1d(100),
        nn.ReLU(),
        nn.Linear(100, 10),
    ).eval()
    x = torch.randn(16, 64)
    before = sum(p.numel() for p in model.parameters())
    report = _apply(model, StructuredPruningConfig(amount=0.5), x)
    assert [m.weight.shape for m in model if isinstance(m, nn.Linear)] == [
        (150, 64),
        (50, 150),
        (10, 50),
    ]
    assert model[3].num_features == 50 and model[3].running_mean.shape == (50,)
    assert report["parameters_after"] == sum(p.numel() for p in model.parameters()) < before / 2
    assert model(x).shape == (16, 10)  # still runs end to end


def test_pruning_keeps_the_most_important_units_exactly() -> None:
    """Zero neurons cost nothing: removing exactly them leaves the outputs unchanged."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    with torch.no_grad():
        model[0].weight[[1, 4]] = 0.0
        model[0].bias[[1, 4]] = 0.0
    x = torch.randn(5, 8)
    expected = model(x)
    _apply(model, StructuredPruningConfig(amount=2 / 6, importance="l1"), x)
    assert model[0].out_features == 4
    torch.testing.assert_close(model(x), expected)


def test_cnn_channels_removed_through_flatten() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10),
    ).eval()
    report = _apply(
        model, StructuredPruningConfig(amount=0.5, importance="l1"), torch.randn(2, 1, 8, 8)
    )
    assert model[0].weight.shape == (8, 1, 3, 3)
    assert model[4].weight.shape == (16, 8, 3, 3)
    assert model[7].weight.shape == (10, 16 * 4 * 4)
    assert report["units"]["0"] == {"before": 16, "after": 8}
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def _conv_weight_shapes(path: Path) -> list[tuple[int, ...]]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    return [tuple(inits[n.input[1]].shape) for n in graph.node if n.op_type == "Conv"]


def test_cnn_artifact_convs_are_narrower_in_onnx(tmp_path: Path) -> None:
    """The job's ONNX artifact, read back with onnx and run in onnxruntime, holds the narrower
    convolutions: the saving is in the file, not in a count the test makes of its own model."""
    import json

    from safetensors.torch import save_file

    from compressor.measure.settings import MeasureSettings
    from compressor.pipeline import compress_model
    from compressor.zoo import ArchitectureSpec

    spec = {
        "family": "cnn",
        "args": {"image_size": 8, "channels": [64, 64], "hidden": [32], "num_classes": 10},
    }
    torch.manual_seed(0)
    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "architecture.json").write_text(json.dumps(spec))
    model = ArchitectureSpec.model_validate(spec).build()
    save_file(dict(model.state_dict()), str(upload / "model.safetensors"))
    original = [tuple(m.weight.shape) for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert original == [(64, 1, 3, 3), (64, 64, 3, 3)]

    recipe = Recipe.model_validate({"steps": [{"technique": "structured_pruning", "amount": 0.5}]})
    result = compress_model(
        upload,
        recipe,
        target=Target(runtime="onnxruntime", batch_size=8),
        workdir=tmp_path / "work",
        settings=MeasureSettings(warmup=1, iterations=3),
    )
    path = result.artifact_dir / "model.onnx"
    assert _conv_weight_shapes(path) == [(32, 1, 3, 3), (32, 32, 3, 3)]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    assert session.run(None, {session.get_inputs()[0].name: x})[0].shape == (5, 10)


def test_dead_units_removed_exactly_with_constants_folded() -> None:
    """Units that read nothing (constant) or that nothing reads go; the outputs stay the same."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(16, 12),
        nn.ReLU(),
        nn.Linear(12, 8),
        nn.BatchNorm1d(8),
        nn.Tanh(),
        nn.Linear(8, 3),
    ).eval()
    with torch.no_grad():
        model[3].running_mean.uniform_(-0.5, 0.5)
        model[3].running_var.uniform_(0.5, 2.0)
        model[0].weight[[0, 3, 5]] = 0.0  # read nothing: relu(bias) is a constant
        model[0].bias[0] = 0.7  # ... a non-zero one, which must land in the next bias
        model[2].weight[:, [1, 7]] = 0.0  # nothing reads units 1 and 7
        model[2].weight[[2, 6]] = 0.0  # constant through BatchNorm and tanh
        model[5].weight[:, 4] = 0.0  # nothing reads unit 4 of the second layer
    x = torch.randn(32, 16)
    expected = model(x)
    before = sum(p.numel() for p in model.parameters())
    config = StructuredPruningConfig(dead_only=True)
    assert StructuredPruningConfig.model_validate(config.model_dump()) == config
    report = _apply(model, config)
    assert [m.weight.shape for m in model if isinstance(m, nn.Linear)] == [
        (7, 16),
        (5, 7),
        (3, 5),
    ]
    assert model[3].num_features == 5
    assert report["units"]["0"]["after"] == 7 and report["units"]["0"]["folded_into_bias"] >= 1
    assert report["units"]["2"] == {"before": 8, "after": 5, "folded_into_bias": 2}
    assert report["parameters_after"] == sum(p.numel() for p in model.parameters()) < before
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_dead_channels_removed_from_cnn_without_folding() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 6, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 4 * 4, 10),
    ).eval()
    with torch.no_grad():
        model[3].weight[:, [2, 5]] = 0.0  # channels 2 and 5 of conv 1 are read by nobody
        model[0].weight[4] = 0.0  # reads nothing, but a constant map is not folded in a conv
        model[6].weight.view(10, 6, 16)[:, 1] = 0.0  # channel 1 of conv 2 is read by nobody
    x = torch.randn(4, 1, 8, 8)
    expected = model(x)
    report = _apply(model, StructuredPruningConfig(dead_only=True))
    assert model[0].weight.shape == (6, 1, 3, 3) and model[3].weight.shape == (5, 6, 3, 3)
    assert model[6].weight.shape == (10, 5 * 16)
    assert report["units"]["0"] == {"before": 8, "after": 6, "folded_into_bias": 0}
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_refusals() -> None:
    with pytest.raises(InvalidRecipeError, match="reload"):
        handler_for(StructuredPruningConfig(heads=True)).check(
            StructuredPruningConfig(heads=True), Target(runtime="torch")
        )
    with pytest.raises(UnsupportedModelError, match="at least two"):
        _apply(nn.Sequential(nn.Linear(4, 2)), StructuredPruningConfig())
    with pytest.raises(UnsupportedModelError, match="not Bilinear"):
        _apply(nn.Bilinear(2, 2, 2), StructuredPruningConfig())
    with pytest.raises(UnsupportedModelError, match="dead-unit removal"):
        _apply(nn.Bilinear(2, 2, 2), StructuredPruningConfig(dead_only=True))


# ------------------------------------------------------------------------- MiniLM


@pytest.fixture(scope="module")
def minilm_torch(minilm_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from compressor.measure.settings import MeasureSettings
    from compressor.pipeline import compress_model

    recipe = Recipe.model_validate({"steps": [{"technique": "structured_pruning", "amount": 0.25}]})
    return compress_model(
        minilm_dir,
        recipe,
        target=Target(runtime="torch", sequence_length=64),
        workdir=tmp_path_factory.mktemp("sp_torch"),
        settings=MeasureSettings(iterations=5, warmup=1),
    )


def test_minilm_ffn_pruned_reloads_smaller(minilm_torch, minilm_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(minilm_torch.artifact_dir), local_files_only=True)
    assert model.config.intermediate_size == 1152  # 1536 less 25 %
    for layer in model.encoder.layer:
        assert layer.intermediate.dense.weight.shape == (1152, 384)
        assert layer.output.dense.weight.shape == (384, 1152)
    report = minilm_torch.report
    assert report["compressed"]["parameters"] < report["original"]["parameters"] - 6 * 2 * 384 * 380
    # Measured 0.79 without fine-tuning: a quarter of the FFN is real damage that a
    # distillation/healing step has to repair; the bound catches a broken slicing (~0.1).
    assert report["fidelity"]["cosine_min"] >= 0.75, report["fidelity"]


def test_minilm_heads_pruned_onnx(minilm_dir: Path, tmp_path: Path) -> None:
    from compressor.measure.settings import MeasureSettings
    from compressor.pipeline import compress_model

    recipe = Recipe.model_validate(
        {"steps": [{"technique": "structured_pruning", "amount": 0.25, "heads": True}]}
    )
    result = compress_model(
        minilm_dir,
        recipe,
        target=Target(sequence_length=64),
        workdir=tmp_path,
        settings=MeasureSettings(iterations=5, warmup=1),
    )
    step = result.report["steps"][0]
    assert all(v["heads_after"] == 9 for v in step["attention_heads"].values())
    session = ort.InferenceSession(str(result.artifact_dir / "model.onnx"))
    import onnx
    from onnx import numpy_helper

    widths = sorted(
        {
            numpy_helper.to_array(i).shape
            for i in onnx.load(str(result.artifact_dir / "model.onnx")).graph.initializer
            if numpy_helper.to_array(i).ndim == 2
        }
    )
    assert (384, 288) in widths and (288, 384) in widths  # 9 heads of 32
    feed = {i.name: np.ones((1, 8), dtype=np.int64) for i in session.get_inputs()}
    assert session.run(None, feed)[0].shape == (1, 8, 384)
    # Measured 0.68 (a quarter of heads and FFN, no fine-tuning): healing is needed.
    assert result.report["fidelity"]["cosine_min"] >= 0.6, result.report["fidelity"]
