"""N:M semi-structured sparsity (2:4 by default) on Linear weights.

In every run of M consecutive weights along the input dimension, only the N largest in
magnitude stay; the rest become zero. Sparse tensor cores (and cuSPARSELt) execute this
pattern at up to 2x dense speed; the weights are saved dense with the zeros in place, so
any runtime loads them and a sparse kernel can pick them up.

This handler prunes by magnitude. A causal LM for runtime vllm is pruned layer by layer on the
calibration text instead (SparseGPT and Wanda, compressor/llm/sparsity.py).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator

from compressor.errors import UnsupportedModelError
from compressor.target import Target
from compressor.techniques.base import ModelState, Stage, StepConfig, StepContext, register


class NMSparsityConfig(StepConfig):
    technique: Literal["nm_sparsity"] = "nm_sparsity"
    n: int = Field(2, ge=1, le=16, description="Non-zeros kept per group.")
    m: int = Field(4, ge=2, le=32, description="Group length along the input dimension.")
    exclude: tuple[str, ...] = Field((), description="Module-name substrings left dense.")

    @model_validator(mode="after")
    def _n_below_m(self) -> NMSparsityConfig:
        if self.n >= self.m:
            raise ValueError(f"n ({self.n}) must be smaller than m ({self.m})")
        return self


def nm_mask(weight: torch.Tensor, *, n: int, m: int) -> torch.Tensor:
    """Boolean mask keeping the n largest |w| of each m consecutive inputs, per output row."""
    rows, cols = weight.shape
    groups = weight.abs().reshape(rows, cols // m, m)
    top = groups.topk(n, dim=-1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, top, True)
    return mask.reshape(rows, cols)


@register("nm_sparsity")
class NMSparsityHandler:
    stage: ClassVar[Stage] = Stage.TORCH

    def check(self, config: NMSparsityConfig, target: Target) -> None:
        return None

    def apply(
        self, config: NMSparsityConfig, state: ModelState, ctx: StepContext
    ) -> dict[str, Any]:
        per_layer: dict[str, float] = {}
        skipped: dict[str, str] = {}
        total = zeros = 0
        with torch.no_grad():
            for name, module in state.module.named_modules():
                if not isinstance(module, torch.nn.Linear):
                    continue
                if any(s in name for s in config.exclude):
                    skipped[name] = "excluded by the recipe"
                    continue
                if module.in_features % config.m:
                    skipped[name] = f"{module.in_features} inputs is not a multiple of m={config.m}"
                    continue
                weight = module.weight
                weight.mul_(nm_mask(weight, n=config.n, m=config.m).to(weight.dtype))
                layer_zeros = int((weight == 0).sum())
                per_layer[name] = round(layer_zeros / weight.numel(), 4)
                total += weight.numel()
                zeros += layer_zeros
        if not per_layer:
            raise UnsupportedModelError(
                f"{config.n}:{config.m} sparsity found no Linear layer whose input size is a "
                f"multiple of {config.m}",
                layer=next(iter(skipped), None),
            )
        return {
            "pattern": f"{config.n}:{config.m}",
            "sparsity_reached": round(zeros / total, 4),
            "sparsity_per_layer": per_layer,
            "layers_left_dense": skipped,
            "storage": "dense with zeros in the pattern (loads in any runtime)",
        }
