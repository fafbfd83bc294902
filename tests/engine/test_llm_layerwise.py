"""The layer-by-layer walker on five architectures: GPTQ moves each layer's outputs less than
round-to-nearest on the same grid, the dequantized model is what the artifact loads back as,
and group sizes follow the layer widths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from compressor.llm import awq, rounding
from compressor.llm.ct_sink import CompressedTensorsSink, DequantizedSink
from compressor.llm.layerwise import quantize_causal_lm
from compressor.llm.rounding import default_group_size, gptq, group_grid, output_error, rtn
from compressor.llm.rules import VLLM_ARCHITECTURES
from tests.fixtures.causal_lm import TINY, save_tiny_causal_lm

torch.manual_seed(0)
CALIBRATION = torch.randint(0, 49152, (6, 48))


@pytest.fixture(scope="module")
def lm_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lms")
    return {arch: save_tiny_causal_lm(arch, root / arch) for arch in TINY}


def _load(folder: Path) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=CALIBRATION[:2]).logits


def test_group_size_follows_the_layer_width() -> None:
    assert default_group_size(1536) == 128
    assert default_group_size(576) == 64  # SmolLM2: 576 = 4.5 x 128
    assert default_group_size(96) == 32
    assert default_group_size(40) == 40  # no group divides: one per row


@pytest.mark.parametrize("symmetric", [False, True])
def test_gptq_rounds_with_less_output_error_than_rtn(symmetric: bool) -> None:
    weight = torch.randn(48, 256)
    x = torch.randn(1024, 256) @ (torch.randn(256, 256) * 0.3) + torch.randn(256)
    hessian = 2 * x.t() @ x / x.shape[0]
    near = rtn(weight, bits=4, group_size=64, symmetric=symmetric)
    optimal, stats = gptq(weight, hessian, bits=4, group_size=64, symmetric=symmetric)
    assert optimal.codes.max() <= 15 and optimal.scales.shape == (48, 4)
    # GPTQ's grid is the clipped one searched with the Hessian's diagonal as the column weights
    grid, _ = group_grid(
        weight, bits=4, group_size=64, symmetric=symmetric, importance=hessian.diagonal()
    )
    assert torch.equal(optimal.scales, grid)
    rtn_error = output_error(weight, near.dequantize(), hessian)
    assert stats.relative_error < 0.7 * rtn_error, (stats.relative_error, rtn_error)


@pytest.mark.parametrize(("symmetric", "at_most"), [(False, 0.95), (True, 0.89)])
def test_the_clipping_search_lowers_the_weighted_rounding_error_of_heavy_tailed_groups(
    symmetric: bool, at_most: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    weight = torch.distributions.StudentT(3.0).sample((64, 256))  # outliers, as LLM weights have
    importance = torch.rand(256) + 0.1  # a Hessian diagonal's part in the search

    def error() -> float:
        scales, zeros = group_grid(
            weight, bits=4, group_size=64, symmetric=symmetric, importance=importance
        )
        zero = torch.full_like(scales, 8) if zeros is None else zeros.float()
        s, z = scales.repeat_interleave(64, 1), zero.repeat_interleave(64, 1)
        rounded = (torch.round(weight / s + z).clamp(0, 15) - z) * s
        return float(((rounded - weight) ** 2 * importance).sum())

    searched = error()
    monkeypatch.setattr(rounding, "CLIP_RATIOS", (1.0,))  # min/max, as before the search
    min_max = error()
    assert searched < at_most * min_max, (searched, min_max)  # measured: 0.93 and 0.86


def test_gpt2_conv1d_layers_are_quantized_in_linear_layout(
    lm_dirs: dict[str, Path], tmp_path: Path
) -> None:
    """GPT-2 stores (in, out) Conv1D weights; both LLM runtimes refuse it (compressor/llm/rules),
    but the walk itself handles it."""
    summary = quantize_causal_lm(
        lm_dirs["gpt2"], DequantizedSink(tmp_path / "q"), bits=4, method="gptq",
        calibration=CALIBRATION,
    )  # fmt: skip
    names = {r.name.rsplit(".", 1)[-1] for r in summary.records}
    assert {"c_attn", "c_proj", "c_fc"} <= names, names
    widths = {r.name.split(".", 3)[-1]: r.in_features for r in summary.records}
    assert widths["mlp.c_proj"] == 256 and widths["attn.c_attn"] == 64, widths
    assert all(r.relative_error is not None and r.relative_error < 0.2 for r in summary.records)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "mistral", "phi3"])
def test_walk_quantizes_every_layer_and_loads_back(
    lm_dirs: dict[str, Path], arch: str, tmp_path: Path
) -> None:
    source = lm_dirs[arch]
    errors = {}
    for method in ("rtn", "gptq"):
        out = tmp_path / method
        summary = quantize_causal_lm(
            source, DequantizedSink(out), bits=4, method=method, calibration=CALIBRATION
        )
        assert len({r.name for r in summary.records}) == len(summary.records) >= 2 * 3
        errors[method] = _logits(_load(out))
    reference = _logits(_load(source))
    gaps = {m: float((logits - reference).pow(2).mean()) for m, logits in errors.items()}
    assert gaps["gptq"] < gaps["rtn"], gaps  # on the calibration rows GPTQ was fitted to
    assert gaps["gptq"] > 0


@pytest.mark.parametrize("arch", ["llama", "qwen2", "mistral"])
def test_compressed_tensors_directory_loads_as_its_dequantized_weights(
    lm_dirs: dict[str, Path], arch: str, tmp_path: Path
) -> None:
    source = lm_dirs[arch]
    cfg = json.loads((source / "config.json").read_text())
    assert cfg["architectures"][0] in VLLM_ARCHITECTURES
    kwargs = {"bits": 4, "method": "rtn", "calibration": None, "symmetric": True}
    quantize_causal_lm(source, CompressedTensorsSink(tmp_path / "ct"), **kwargs)
    quantize_causal_lm(source, DequantizedSink(tmp_path / "float"), **kwargs)
    written = json.loads((tmp_path / "ct" / "config.json").read_text())["quantization_config"]
    assert written["format"] == "pack-quantized"
    loaded, expected = _logits(_load(tmp_path / "ct")), _logits(_load(tmp_path / "float"))
    # The directory stores scales and float tables in fp16: equal up to that rounding.
    cos = torch.nn.functional.cosine_similarity(loaded.flatten(), expected.flatten(), dim=0)
    assert float(cos) > 0.9999, float(cos)
    layers = {d: _layer_bytes(tmp_path / d) for d in ("ct", "float")}
    assert layers["ct"] < layers["float"] / 6, layers  # int4 + fp16 group scales vs fp32


def _layer_bytes(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    for path in folder.glob("*.safetensors"):
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118
                if ".layers." in key:
                    tensor = handle.get_tensor(key)
                    total += tensor.numel() * tensor.element_size()
    return total


def test_awq_scale_search_favours_the_channels_with_large_activations() -> None:
    """LLM activations have a few channels far larger than the rest; scaling those columns up
    before rounding lowers the output error, and alpha = 0 (plain rounding) bounds the search."""
    torch.manual_seed(0)
    weight = torch.randn(96, 256)
    channel = torch.ones(256)
    channel[torch.randperm(256)[:8]] = 20.0  # outlier channels
    x = torch.randn(2048, 256) * channel
    hessian = 2 * x.t() @ x / x.shape[0]
    s, alpha, ratio = awq.search_scale([weight], hessian, bits=4, group=64, symmetric=False)
    assert alpha > 0 and ratio < 0.45, (alpha, ratio)  # measured: alpha 0.4, ratio 0.33
    assert float(s[channel > 1].mean()) > 3 * float(s[channel == 1].mean())
    flat = torch.randn(2048, 256)  # no outliers: no reason to scale, and never worse than none
    _, _, flat_ratio = awq.search_scale(
        [weight], 2 * flat.t() @ flat / 2048, bits=4, group=64, symmetric=False
    )
    assert flat_ratio <= 1.0


def _with_outlier_channels(source: Path, folder: Path) -> Path:
    """The same model with a few hidden channels amplified by the norms before the attention
    and the MLP (and the following linears' columns shrunk to match): the same function in
    float, with the activation outliers that real LLMs have."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(source, folder)
    state = load_file(str(folder / "model.safetensors"))
    loud = torch.tensor([3, 17, 40])
    for key in list(state):
        if key.endswith(("input_layernorm.weight", "post_attention_layernorm.weight")):
            state[key][loud] *= 30.0
        if key.endswith(tuple(f"{p}_proj.weight" for p in ("q", "k", "v", "gate", "up"))):
            state[key][:, loud] /= 30.0
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_awq_walk_scales_every_pair_and_beats_rounding_on_outlier_channels(
    lm_dirs: dict[str, Path], tmp_path: Path
) -> None:
    source = _with_outlier_channels(lm_dirs["llama"], tmp_path / "loud")
    reference = _logits(_load(source))
    gaps, summaries = {}, {}
    for method in ("rtn", "awq"):
        out = tmp_path / method
        summaries[method] = quantize_causal_lm(
            source, DequantizedSink(out), bits=4, method=method, calibration=CALIBRATION
        )
        gaps[method] = float((_logits(_load(out)) - reference).pow(2).mean())
    choices = [c for layer in summaries["awq"].scales.values() for c in layer]
    assert len(choices) == 2 * 3 and not any(c.undone for c in choices), choices
    assert any(c.alpha > 0 for c in choices), choices
    assert gaps["awq"] < 0.35 * gaps["rtn"], gaps  # measured: 0.22


@pytest.mark.parametrize("arch", ["qwen2", "mistral", "phi3", "gpt2"])
def test_awq_scalings_keep_the_float_layer_on_other_architectures(
    lm_dirs: dict[str, Path], arch: str, tmp_path: Path
) -> None:
    summary = quantize_causal_lm(
        lm_dirs[arch], DequantizedSink(tmp_path / "q"), bits=4, method="awq",
        calibration=CALIBRATION,
    )  # fmt: skip
    choices = [c for layer in summary.scales.values() for c in layer]
    pairs = {"qwen2": 3, "mistral": 3, "phi3": 2, "gpt2": 2}[arch]
    assert len(choices) == 2 * pairs and not any(c.undone for c in choices), choices
    if arch != "gpt2":  # the float writer stores Linear layout; no runtime takes GPT-2 (rules)
        _load(tmp_path / "q")  # the scaled norms and linears load back as the architecture


def test_awq_figures_count_what_the_walk_did() -> None:
    pair = awq.PAIRS[0]
    summary = {
        "l.0": [awq.ScaleChoice(pair, 0.5, 0.6), awq.ScaleChoice(pair, 0.0, 1.0)],
        "l.1": [awq.ScaleChoice(pair, 0.3, 1.0, undone=True)],
    }
    fig = awq.figures(summary)
    assert (fig.pairs, fig.scaled, fig.undone) == (3, 1, 1), fig
