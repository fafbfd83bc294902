"""AWQ (Lin et al., 2023): give the input channels that carry large activations a finer grid.

Within a decoder layer, each op that feeds a group of linears (the norm before q/k/v, the norm
before gate/up, up before down) has its output channels divided by a scale s and the linears'
input columns multiplied by it: the float layer computes the same thing, but after rounding the
weights that meet large activations lose less. s = a^alpha, with a each channel's RMS on the
calibration text (from the linears' input Hessian H), and alpha searched on ALPHAS for the
lowest output error of the rounded linears, tr(E H E^T) with E = W - Q(W diag s) diag(s)^-1.
alpha = 0 (no scaling) is on the grid, so on that measure AWQ never does worse than round to
nearest. Each pair is checked on a calibration row after scaling: a pair whose scaling changes
the float layer's output (a norm with an offset, say) is undone and rounded as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from compressor.llm.linears import linear_weight, set_weight
from compressor.llm.report import ScalingFigures
from compressor.llm.rounding import rtn

ALPHAS = tuple(i / 10 for i in range(11))
SCALE_CHECK = 1e-3  # relative change of the float layer's output a scaling may cause (fp32)


@dataclass(frozen=True)
class ScalePair:
    source: str  # the module whose output channels take 1/s: a norm, or a linear's rows
    linears: tuple[str, ...]  # the linears that read exactly that output


# Llama, Mistral, Qwen2, SmolLM; Phi-3's fused projections; GPT-2 (LayerNorm, Conv1D). o_proj
# is left out: with grouped KV heads v_proj's rows do not map one to one onto its inputs.
PAIRS = (
    ScalePair("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
    ScalePair("input_layernorm", ("self_attn.qkv_proj",)),
    ScalePair("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
    ScalePair("post_attention_layernorm", ("mlp.gate_up_proj",)),
    ScalePair("mlp.up_proj", ("mlp.down_proj",)),
    ScalePair("ln_1", ("attn.c_attn",)),
    ScalePair("ln_2", ("mlp.c_fc",)),
)


@dataclass(frozen=True)
class ScaleChoice:
    pair: ScalePair
    alpha: float
    error_ratio: float  # the rounded linears' output error at alpha, over that at alpha = 0
    undone: bool = False  # the scaling changed the float layer's output, so it was taken back


def pairs_of(layer: torch.nn.Module) -> list[ScalePair]:
    modules = dict(layer.named_modules())
    return [p for p in PAIRS if p.source in modules and all(n in modules for n in p.linears)]


# A pair's search: (pair, its linears' weights (out, in)) -> (s, alpha, error over unscaled).
Search = Callable[[ScalePair, list[torch.Tensor]], tuple[torch.Tensor, float, float]]


def normalized(s: torch.Tensor) -> torch.Tensor:
    """The same scaling centred on 1 (geometric mean of its extremes), so neither the divided
    op nor the multiplied columns drift far from their float range."""
    return s / (s.max() * s.min()).sqrt()


def search_scale(
    weights: list[torch.Tensor], hessian: torch.Tensor, *, bits: int, group: int, symmetric: bool
) -> tuple[torch.Tensor, float, float]:
    """The scale, its alpha, and its error over alpha = 0's."""
    magnitude = (hessian.diagonal() / 2).clamp(min=0).sqrt().clamp(min=1e-6)
    errors: list[tuple[float, float, torch.Tensor]] = []
    for alpha in ALPHAS:
        s = normalized(magnitude**alpha)
        total = 0.0
        for w in weights:
            q = rtn(w * s, bits=bits, group_size=group, symmetric=symmetric).dequantize() / s
            e = w - q
            total += float(((e @ hessian) * e).sum())
        errors.append((total, alpha, s))
    best = min(errors, key=lambda t: t[0])
    return best[2], best[1], best[0] / max(errors[0][0], 1e-30)


def _divide_outputs(source: torch.nn.Module, s: torch.Tensor) -> None:
    bias = getattr(source, "bias", None)
    weight: torch.Tensor = source.weight.data  # type: ignore[union-attr,assignment]
    # a Linear's rows, or a norm's per-channel weight (Conv1D never feeds a pair: GPT-2's MLP
    # has a GELU between)
    source.weight.data = weight / (s[:, None] if isinstance(source, torch.nn.Linear) else s)
    if bias is not None:
        bias.data = bias.data / s


def awq_search(
    hessians: dict[str, torch.Tensor],
    *,
    bits: int,
    group_of: Callable[[int], int],
    symmetric: bool,
) -> Search:
    def search(pair: ScalePair, weights: list[torch.Tensor]) -> tuple[torch.Tensor, float, float]:
        group = group_of(weights[0].shape[1])
        hessian = hessians[pair.linears[0]]
        return search_scale(weights, hessian, bits=bits, group=group, symmetric=symmetric)

    return search


def scale_layer(
    layer: torch.nn.Module,
    hessians: dict[str, torch.Tensor],
    output: Callable[[], torch.Tensor],
    *,
    search: Search,
) -> list[ScaleChoice]:
    """Scale every pair of ``layer`` in place by what ``search`` picks (AWQ's, or SmoothQuant's
    in compressor/llm/smoothquant.py) and carry its linears' Hessians into the scaled space
    (H / s s^T, which keeps each linear's output error the same). ``output`` runs the layer on a
    calibration row."""
    modules = dict(layer.named_modules())
    reference = output()
    chosen = []
    for pair in pairs_of(layer):
        weights = [linear_weight(modules[n]).float() for n in pair.linears]
        s, alpha, ratio = search(pair, weights)
        if alpha == 0.0:
            chosen.append(ScaleChoice(pair, 0.0, 1.0))
            continue
        saved = {k: v.clone() for k, v in layer.state_dict().items()}
        _divide_outputs(modules[pair.source], s)
        for name, w in zip(pair.linears, weights, strict=True):
            set_weight(modules[name], w * s)
        after = output()
        change = float((after - reference).norm() / reference.norm().clamp(min=1e-30))
        if change > SCALE_CHECK:
            layer.load_state_dict(saved)
            chosen.append(ScaleChoice(pair, alpha, 1.0, undone=True))
            continue
        for name in pair.linears:
            if name in hessians:
                hessians[name] = hessians[name] / (s[:, None] * s[None, :])
        chosen.append(ScaleChoice(pair, alpha, ratio))
    return chosen


def figures(scales: dict[str, list[ScaleChoice]]) -> ScalingFigures:
    choices = [c for layer in scales.values() for c in layer]
    return ScalingFigures(
        pairs=len(choices),
        scaled=sum(1 for c in choices if c.alpha > 0 and not c.undone),
        undone=sum(1 for c in choices if c.undone),
        median_alpha=float(torch.tensor([c.alpha for c in choices] or [0.0]).median()),
        median_error_ratio=round(
            float(torch.tensor([c.error_ratio for c in choices] or [1.0]).median()), 4
        ),
    )


__all__ = [
    "awq_search",
    "figures",
    "normalized",
    "Search",
    "ALPHAS",
    "ScaleChoice",
    "ScalePair",
    "pairs_of",
    "scale_layer",
    "search_scale",
]
