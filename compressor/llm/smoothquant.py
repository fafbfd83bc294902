"""SmoothQuant (Xiao et al., 2023) for W8A8: int8 weights per output channel, each token's
activations rounded to int8 at run time (vLLM's int8 GEMM).

A few hidden channels of an LLM carry activations 10-100x the rest, and a per-token int8 grid
sized for them rounds every other channel of that token to a handful of levels. The op feeding
a group of linears (the pairs of compressor/llm/awq.py) has its output channels divided by s and
the linears' columns multiplied by it: s_j = max|X_j|^alpha / max|W_j|^(1 - alpha) moves the
outliers' range into the weights, whose grid is per output channel.

alpha is not fixed at the paper's 0.5 or llm-compressor's 0.8: for each pair, every alpha up to
the step's ``smoothing`` is tried, and no scaling at all, on a sample of the pair's calibration
inputs, and the one whose W8A8 output (both sides rounded as the runtime does) lies nearest the
float output is kept. So on those inputs smoothing never does worse than none.
"""

from __future__ import annotations

import torch

from compressor.llm.awq import ScalePair, Search, normalized
from compressor.llm.rounding import rtn

SAMPLE_TOKENS = 1024  # the calibration tokens each pair's search reads


def quantize_tokens(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Symmetric per-token rounding, as vLLM's dynamic int8 activations: each row its own
    scale, max |x| / 127."""
    levels = 2 ** (bits - 1) - 1
    scale = x.abs().amax(-1, keepdim=True).clamp(min=1e-12) / levels
    return (x / scale).round().clamp(-levels, levels) * scale


def per_channel(weight: torch.Tensor) -> torch.Tensor:
    """The weight on the symmetric int8 grid, one scale per output channel, dequantized."""
    return rtn(weight, bits=8, group_size=weight.shape[1], symmetric=True).dequantize()


def search_smoothing(
    weights: list[torch.Tensor], sample: torch.Tensor, act_max: torch.Tensor, *, max_alpha: float
) -> tuple[torch.Tensor, float, float]:
    """The scale, its alpha (0.0: none), and its W8A8 output error over no scaling's."""
    references = [sample @ w.t() for w in weights]

    def error(s: torch.Tensor) -> float:
        x = quantize_tokens(sample / s)
        return sum(
            float((x @ per_channel(w * s).t() - ref).pow(2).sum())
            for w, ref in zip(weights, references, strict=True)
        )

    ones = torch.ones_like(act_max)
    unscaled = error(ones)
    best = (unscaled, 0.0, ones)
    w_max = torch.stack([w.abs().amax(0) for w in weights]).amax(0).clamp(min=1e-6)
    a_max = act_max.clamp(min=1e-6)
    for step in range(1, round(max_alpha * 10) + 1):
        alpha = step / 10
        s = normalized(a_max**alpha / w_max ** (1 - alpha))
        candidate = error(s)
        if candidate < best[0]:
            best = (candidate, alpha, s)
    return best[2], best[1], best[0] / max(unscaled, 1e-30)


class InputStats:
    """Per linear: the largest |input| per channel over all calibration tokens, and an evenly
    spread sample of SAMPLE_TOKENS input rows (the linears of a pair share their input)."""

    def __init__(self, total_tokens: int) -> None:
        self.stride = max(1, total_tokens // SAMPLE_TOKENS)
        self.max: dict[str, torch.Tensor] = {}
        self.rows: dict[str, list[torch.Tensor]] = {}

    def add(self, name: str, x: torch.Tensor) -> None:
        top = x.abs().amax(0)
        self.max[name] = torch.maximum(self.max[name], top) if name in self.max else top
        self.rows.setdefault(name, []).append(x[:: self.stride].clone())

    def search(self, *, max_alpha: float) -> Search:
        def search(
            pair: ScalePair, weights: list[torch.Tensor]
        ) -> tuple[torch.Tensor, float, float]:
            first = pair.linears[0]
            sample = torch.cat(self.rows[first])[:SAMPLE_TOKENS]
            return search_smoothing(weights, sample, self.max[first], max_alpha=max_alpha)

        return search


__all__ = ["InputStats", "SAMPLE_TOKENS", "per_channel", "quantize_tokens", "search_smoothing"]
