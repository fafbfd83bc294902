"""Unstructured magnitude pruning of Linear/Conv weights to a target sparsity."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from compressor.errors import UnsupportedModelError
from compressor.target import Target
from compressor.techniques.base import ModelState, Stage, StepConfig, StepContext, register


class PruningConfig(StepConfig):
    technique: Literal["pruning"] = "pruning"
    method: Literal["magnitude"] = "magnitude"
    sparsity: float = Field(0.5, gt=0.0, lt=1.0)
    scope: Literal["layer", "global"] = "layer"


def _prunable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: module.weight
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear | torch.nn.Conv1d | torch.nn.Conv2d)
    }


@register("pruning")
class PruningHandler:
    stage: ClassVar[Stage] = Stage.TORCH

    def check(self, config: PruningConfig, target: Target) -> None:
        return None

    def apply(self, config: PruningConfig, state: ModelState, ctx: StepContext) -> dict[str, Any]:
        weights = _prunable(state.module)
        if not weights:
            raise UnsupportedModelError("magnitude pruning found no Linear or Conv layer")
        with torch.no_grad():
            global_threshold = None
            if config.scope == "global":
                magnitudes = torch.cat([w.abs().flatten() for w in weights.values()])
                k = max(1, int(config.sparsity * magnitudes.numel()))
                global_threshold = magnitudes.kthvalue(k).values
            per_layer: dict[str, float] = {}
            for name, weight in weights.items():
                if global_threshold is None:
                    k = max(1, int(config.sparsity * weight.numel()))
                    threshold = weight.abs().flatten().kthvalue(k).values
                else:
                    threshold = global_threshold
                weight.mul_((weight.abs() > threshold).to(weight.dtype))
                per_layer[name] = round(float((weight == 0).float().mean()), 4)
        total = sum(w.numel() for w in weights.values())
        zeros = sum(int((w == 0).sum()) for w in weights.values())
        return {
            "method": config.method,
            "scope": config.scope,
            "target_sparsity": config.sparsity,
            "sparsity_reached": round(zeros / total, 4),
            "sparsity_per_layer": per_layer,
        }
