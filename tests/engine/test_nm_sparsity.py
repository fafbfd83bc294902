"""2:4 sparsity: every group of 4 inputs holds at most 2 non-zeros in the SAVED weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from compressor.errors import UnsupportedModelError
from compressor.inputs import EvalInputs
from compressor.recipe import Recipe
from compressor.target import Target
from compressor.techniques.base import ModelState, StepContext, handler_for
from compressor.techniques.pruning.nm_sparsity import NMSparsityConfig, nm_mask


def _groups_ok(weight: torch.Tensor, n: int, m: int) -> bool:
    rows, cols = weight.shape
    nonzero = (weight.reshape(rows, cols // m, m) != 0).sum(-1)
    return bool((nonzero <= n).all())


def test_config_round_trip_and_validation() -> None:
    config = NMSparsityConfig(n=4, m=8, exclude=("classifier",))
    assert NMSparsityConfig.model_validate(config.model_dump()) == config
    with pytest.raises(ValueError, match="smaller than m"):
        NMSparsityConfig(n=4, m=4)
    assert Recipe.model_validate({"steps": [{"technique": "nm_sparsity"}]}).steps[0] == (
        NMSparsityConfig()
    )


def test_mask_keeps_largest_in_each_group() -> None:
    w = torch.tensor([[1.0, -5.0, 0.5, 3.0, 0.1, 0.2, -0.3, 0.05]])
    assert nm_mask(w, n=2, m=4).tolist() == [[False, True, False, True, False, True, True, False]]


def test_small_mlp_pattern_and_skips() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 6))
    model.add_module("odd", torch.nn.Linear(6, 3))
    config = NMSparsityConfig()
    state = ModelState(module=model, source_dir=Path("."), workdir=Path("."))
    ctx = StepContext(target=Target(), calibration=EvalInputs({}, "none"))
    report = handler_for(config).apply(config, state, ctx)
    assert _groups_ok(model[0].weight, 2, 4) and _groups_ok(model[2].weight, 2, 4)
    assert report["sparsity_per_layer"] == {"0": 0.5, "2": 0.5}
    assert "multiple of m=4" in report["layers_left_dense"]["odd"]
    with pytest.raises(UnsupportedModelError):
        handler_for(config).apply(
            config, ModelState(torch.nn.Linear(3, 2), Path("."), Path(".")), ctx
        )


def test_minilm_2_4_saved_weights(minilm_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModel

    from compressor.measure.settings import MeasureSettings
    from compressor.pipeline import compress_model

    result = compress_model(
        minilm_dir,
        Recipe.model_validate({"steps": [{"technique": "nm_sparsity"}]}),
        target=Target(runtime="torch", sequence_length=64),
        workdir=tmp_path,
        settings=MeasureSettings(iterations=5, warmup=1),
    )
    weights = load_file(str(result.artifact_dir / "model.safetensors"))
    linear = {
        k: v
        for k, v in weights.items()
        if k.endswith("dense.weight") or k.endswith(("query.weight", "key.weight", "value.weight"))
    }
    assert len(linear) == 6 * 6 + 1  # 36 encoder Linears + pooler
    for name, weight in linear.items():
        assert _groups_ok(weight, 2, 4), name
        assert float((weight == 0).float().mean()) >= 0.5, name
    assert not any("mask" in k or k.endswith("_orig") for k in weights)
    model = AutoModel.from_pretrained(str(result.artifact_dir), local_files_only=True)
    assert _groups_ok(model.encoder.layer[0].output.dense.weight.data, 2, 4)
    step = result.report["steps"][0]
    assert step["pattern"] == "2:4" and step["sparsity_reached"] == 0.5
    # One-shot 2:4 on every Linear of a 22M model, no fine-tuning: measured cosine_min 0.53
    # (mean 0.66); it needs healing. The bound catches a wrong pattern (random ~0.1).
    assert result.report["fidelity"]["cosine_min"] >= 0.45, result.report["fidelity"]
