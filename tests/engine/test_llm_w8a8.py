"""W8A8 on a causal LM (int8_dynamic for vllm): SmoothQuant's searched scaling brings the int8
model nearer the float one on a model whose activations have outlier channels, and the
compressed-tensors directory transformers loads computes what the walk judged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from compressor.llm.ct_sink import CompressedTensorsSink
from compressor.llm.layerwise import quantize_causal_lm
from compressor.llm.smoothquant import quantize_tokens, search_smoothing
from tests.engine.test_llm_layerwise import CALIBRATION, _load, _logits, _with_outlier_channels
from tests.fixtures.causal_lm import save_tiny_causal_lm


@pytest.fixture(scope="module")
def loud_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("w8a8")
    return _with_outlier_channels(save_tiny_causal_lm("llama", root / "llama"), root / "loud")


def test_per_token_rounding_gives_each_token_its_own_scale() -> None:
    x = torch.tensor([[1.0, -0.5, 0.25], [100.0, 3.0, 0.0]])
    rounded = quantize_tokens(x)
    assert torch.allclose(rounded[0], x[0], atol=1 / 127)  # unharmed by the loud second row
    assert float((rounded[1] - x[1]).abs().max()) <= 100 / 127 / 2 + 1e-6


def test_the_smoothing_search_moves_outliers_into_the_weights_and_never_does_worse() -> None:
    torch.manual_seed(0)
    sample = torch.randn(512, 128)
    sample[:, [5, 60]] *= 80.0  # the outlier channels per-token int8 suffers from
    weights = [torch.randn(64, 128) * 0.05, torch.randn(32, 128) * 0.05]
    act_max = sample.abs().amax(0)
    s, alpha, ratio = search_smoothing(weights, sample, act_max, max_alpha=0.8)
    assert alpha > 0 and ratio < 0.5, (alpha, ratio)
    assert s[5] > 5 * s.median() and s[60] > 5 * s.median()
    flat = torch.randn(512, 128)
    _, alpha_flat, ratio_flat = search_smoothing(weights, flat, flat.abs().amax(0), max_alpha=0.8)
    assert ratio_flat <= 1.0
    _, none, same = search_smoothing(weights, sample, act_max, max_alpha=0.0)
    assert (none, same) == (0.0, 1.0)  # smoothing 0 disables it


@pytest.mark.parametrize("method", ["rtn", "gptq"])
def test_smoothquant_brings_w8a8_nearer_the_float_model_and_loads_as_judged(
    loud_llama: Path, tmp_path: Path, method: str
) -> None:
    reference = _logits(_load(loud_llama))
    gaps, summaries = {}, {}
    for smoothing in (0.0, 0.8):
        out = tmp_path / f"s{smoothing}"
        summaries[smoothing] = quantize_causal_lm(
            loud_llama, CompressedTensorsSink(out, dynamic_activations=True), bits=8,
            method=method, calibration=CALIBRATION, w8a8_smoothing=smoothing,
        )  # fmt: skip
        gaps[smoothing] = float((_logits(_load(out)) - reference).pow(2).mean())
    choices = [c for layer in summaries[0.8].scales.values() for c in layer]
    assert len(choices) == 2 * 3 and not any(c.undone for c in choices), choices
    assert sum(c.alpha > 0 for c in choices) >= 4, choices  # the two loud norms in each layer
    assert gaps[0.8] < 0.5 * gaps[0.0], gaps
    config = json.loads((tmp_path / "s0.8" / "config.json").read_text())["quantization_config"]
    assert config["format"] == "int-quantized"
    (group,) = config["config_groups"].values()
    assert group["weights"]["strategy"] == "channel" and group["weights"]["num_bits"] == 8
    assert group["input_activations"] == {
        **group["input_activations"],
        "dynamic": True,
        "strategy": "token",
        "num_bits": 8,
    }
    widths = {
        r.name.rsplit(".", 1)[-1]: (r.in_features, r.group_size) for r in summaries[0.8].records
    }
    assert all(w == g for w, g in widths.values()), widths  # one scale per output channel


def test_the_loaded_w8a8_model_rounds_each_tokens_activations(
    loud_llama: Path, tmp_path: Path
) -> None:
    """The transformers load simulates the runtime's int8 activations (compressed-tensors'
    forward wrapper): a linear's output there is its weights times the rounded input."""
    out = tmp_path / "w8a8"
    quantize_causal_lm(
        loud_llama, CompressedTensorsSink(out, dynamic_activations=True), bits=8, method="rtn",
        calibration=CALIBRATION, w8a8_smoothing=0.0,
    )  # fmt: skip
    model = _load(out)
    _logits(model)  # the first forward decompresses the weights
    linear = model.model.layers[0].mlp.down_proj
    x = torch.randn(1, 3, linear.in_features)  # (batch, tokens, features), as the model feeds it
    x[..., 7] *= 60.0
    with torch.no_grad():
        loaded = linear(x)
        weight = linear.weight.detach().float()
        unrounded = x @ weight.t()
        # compressed-tensors' simulation: scale max|x| / 127.5, codes clamped to [-128, 127]
        # (vLLM's kernel: max|x| / 127, which compressor/llm/smoothquant.py follows)
        scale = x.abs().amax(-1, keepdim=True) / 127.5
        rounded = (x / scale).round().clamp(-128, 127) * scale @ weight.t()
    assert float((loaded - rounded).norm()) < 0.05 * float((loaded - unrounded).norm())
