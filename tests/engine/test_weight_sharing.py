"""Weight sharing: each layer keeps at most ``clusters`` non-zero values, zeros stay zeros, the
codebook is k-means (not a uniform grid), and the shared values survive int8 into the artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from compressor.inputs import EvalInputs
from compressor.recipe import Recipe
from compressor.target import Target
from compressor.techniques.base import ModelState, StepContext, handler_for
from compressor.techniques.quantization.weight_sharing import WeightSharingConfig, shared_values


def _apply(model: torch.nn.Module, config: WeightSharingConfig) -> dict[str, object]:
    state = ModelState(module=model, source_dir=Path("."), workdir=Path("."))
    ctx = StepContext(target=Target(), calibration=EvalInputs({}, "none"))
    return handler_for(config).apply(config, state, ctx)


def test_layers_keep_at_most_the_codebook_and_their_zeros() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.ReLU(), torch.nn.Linear(48, 10))
    with torch.no_grad():
        model[0].weight.mul_((torch.rand_like(model[0].weight) > 0.8).float())
    zeros = model[0].weight == 0
    before = model[0].weight.detach().clone()
    report = _apply(model, WeightSharingConfig(clusters=8, exclude=("2",)))
    weight = model[0].weight.detach()
    assert bool((weight[zeros] == 0).all()) and bool((weight[~zeros] != 0).all())
    assert weight[~zeros].unique().numel() <= 8 and model[0].bias.unique().numel() <= 8
    assert model[2].weight.unique().numel() > 100  # excluded: untouched
    error = report["tensors"]["0.weight"]["relative_error"]
    assert 0 < error < 0.15
    assert error == pytest.approx(float((weight - before).norm() / before.norm()), rel=1e-3, abs=0)


def test_kmeans_codebook_beats_a_uniform_grid_on_heavy_tails() -> None:
    torch.manual_seed(1)
    values = torch.distributions.StudentT(3.0).sample((5000,))
    codebook, index = shared_values(values, 16)
    kmeans = float((codebook[index] - values.double()).pow(2).mean())
    grid = torch.linspace(float(values.min()), float(values.max()), 16, dtype=torch.float64)
    nearest = (values.double()[:, None] - grid[None, :]).abs().argmin(1)
    uniform = float((grid[nearest] - values.double()).pow(2).mean())
    assert kmeans < 0.35 * uniform, (kmeans, uniform)  # measured 0.25x


def test_a_step_that_retrains_after_sharing_is_refused() -> None:
    shared = {"technique": "weight_sharing", "clusters": 16}
    with pytest.raises(ValueError, match="off their shared values"):
        Recipe.model_validate(
            {
                "steps": [
                    {"technique": "pruning"},
                    shared,
                    {"technique": "distillation", "student": "current"},
                ]
            }
        )
    Recipe.model_validate(
        {"steps": [{"technique": "pruning"}, shared, {"technique": "quantization"}]}
    )


def test_shared_values_reach_the_int8_artifact(tmp_path: Path) -> None:
    from compressor.measure.settings import MeasureSettings
    from compressor.pipeline import compress_model
    from scripts.train_digits import train_and_save

    train_and_save("mlp", tmp_path / "mlp", epochs=1)

    recipe = Recipe.model_validate(
        {
            "steps": [
                {"technique": "pruning", "sparsity": 0.9, "scope": "global"},
                {"technique": "weight_sharing", "clusters": 16},
                {"technique": "quantization", "per_channel": False, "smoothing": 0.0},
            ]
        }
    )
    result = compress_model(
        tmp_path / "mlp",
        recipe,
        target=Target(runtime="onnxruntime", batch_size=8),
        workdir=tmp_path / "run",
        settings=MeasureSettings(warmup=1, iterations=3),
    )
    model = onnx.load(str(result.artifact_dir / "model.onnx"))
    int8 = [
        numpy_helper.to_array(t)
        for t in model.graph.initializer
        if t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8) and len(t.dims) == 2
    ]
    assert int8, "the artifact holds int8 weights"
    # 16 shared values, plus the quantized zero.
    assert all(len(np.unique(w)) <= 17 for w in int8), [len(np.unique(w)) for w in int8]
    step = next(s for s in result.compression_report.steps if s.technique == "weight_sharing")
    assert step.details["index_bits"] == 4
