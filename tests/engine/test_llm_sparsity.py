"""2:4 on a causal LM: SparseGPT and Wanda read the calibration text and move the layers less
than magnitude pruning does; the directory keeps the pattern exactly and loads in transformers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from compressor.llm.ct_sink import CompressedTensorsSink
from compressor.llm.layerwise import quantize_causal_lm
from compressor.llm.rounding import output_error
from compressor.llm.sparsity import sparsegpt, wanda
from compressor.techniques.pruning.nm_sparsity import nm_mask
from tests.engine.test_llm_layerwise import CALIBRATION, _load, _logits
from tests.fixtures.causal_lm import save_tiny_causal_lm


def _is_2_4(weight: torch.Tensor) -> bool:
    runs = (weight != 0).reshape(weight.shape[0], -1, 4).sum(-1)
    return bool((runs <= 2).all())


def test_calibration_aware_pruning_moves_the_output_less_than_magnitude() -> None:
    torch.manual_seed(0)
    weight = torch.randn(96, 256)
    scale = torch.rand(256) * 4 + 0.1  # inputs of very different sizes, as in an LLM layer
    x = (torch.randn(2048, 256) @ (torch.eye(256) + 0.3 * torch.randn(256, 256) / 16)) * scale
    hessian = 2 * x.t() @ x / x.shape[0]
    magnitude = weight * nm_mask(weight, n=2, m=4)
    by_wanda = wanda(weight, hessian, n=2, m=4)
    by_sparsegpt, _damp = sparsegpt(weight, hessian, n=2, m=4)
    errors = {
        name: output_error(weight, w, hessian)
        for name, w in (("magnitude", magnitude), ("wanda", by_wanda), ("sparsegpt", by_sparsegpt))
    }
    assert all(_is_2_4(w) for w in (magnitude, by_wanda, by_sparsegpt))
    assert errors["wanda"] < 0.8 * errors["magnitude"], errors  # measured: 0.61
    assert errors["sparsegpt"] < 0.95 * errors["wanda"], errors  # measured: 0.88


def test_walk_prunes_every_decoder_linear_2_4_and_the_directory_loads(tmp_path: Path) -> None:
    source = save_tiny_causal_lm("llama", tmp_path / "llama")
    reference = _logits(_load(source))
    gaps = {}
    for method in ("sparsegpt", "wanda"):
        out = tmp_path / method
        summary = quantize_causal_lm(
            source, CompressedTensorsSink(out, sparsity="2:4"), bits=16, method=method,
            calibration=CALIBRATION, sparsity=(2, 4),
        )  # fmt: skip
        assert len(summary.records) == 2 * 7
        loaded = _load(out)
        for name, module in loaded.named_modules():
            if isinstance(module, torch.nn.Linear) and ".layers." in name:
                assert _is_2_4(module.weight) and float((module.weight == 0).float().mean()) >= 0.5
        assert _is_2_4(loaded.lm_head.weight) is False  # the head stays dense
        gaps[method] = float((_logits(loaded) - reference).pow(2).mean())
        config = json.loads((out / "config.json").read_text())["quantization_config"]
        assert config["sparsity_config"]["sparsity_structure"] == "2:4", config
        assert "config_groups" not in config
    assert gaps["sparsegpt"] < gaps["wanda"], gaps


@pytest.mark.parametrize("arch", ["qwen2", "mistral"])
def test_sparsegpt_walk_runs_on_other_architectures(arch: str, tmp_path: Path) -> None:
    source = save_tiny_causal_lm(arch, tmp_path / arch)
    out = tmp_path / "sparse"
    quantize_causal_lm(
        source, CompressedTensorsSink(out, sparsity="2:4"), bits=16, method="sparsegpt",
        calibration=CALIBRATION, sparsity=(2, 4),
    )  # fmt: skip
    loaded = _load(out)
    assert _is_2_4(loaded.model.layers[1].mlp.down_proj.weight)
