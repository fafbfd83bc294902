"""The low-rank step: factorizes each Linear and Conv2d layer at the ranks planned for it
(``rank_search.plan_ranks``), then optionally heals by distillation. A factorized Hugging Face
model no longer matches its config.json, so it can only leave as ONNX.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from torch import nn

from compressor.errors import InvalidRecipeError, UnsupportedModelError
from compressor.students import count_parameters
from compressor.target import Target
from compressor.techniques.base import ModelState, Stage, StepContext, register
from compressor.techniques.low_rank.config import LowRankConfig
from compressor.techniques.low_rank.factorization import (
    Decomposition,
    decompose,
    factorize,
    replace_layer,
)
from compressor.techniques.low_rank.rank_search import plan_ranks
from compressor.training import distill, is_hf_model


@register("low_rank")
class LowRankHandler:
    stage: ClassVar[Stage] = Stage.TORCH

    def check(self, config: LowRankConfig, target: Target) -> None:
        if target.runtime == "torch":
            raise InvalidRecipeError(
                "low_rank replaces layers by pairs of smaller ones, so the model no longer "
                "matches its config.json or architecture.json and cannot be saved in its upload "
                "format; it is delivered as ONNX: set target.runtime to 'onnxruntime'"
            )

    def apply(self, config: LowRankConfig, state: ModelState, ctx: StepContext) -> dict[str, Any]:
        module: nn.Module = state.module
        teacher = copy.deepcopy(module) if config.heal is not None else None
        before = count_parameters(module)
        candidates = [
            (n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)
        ]
        if not candidates:
            raise UnsupportedModelError("low_rank found no Linear or Conv2d layer")
        left_alone: dict[str, str] = {}
        decomps: dict[str, list[Decomposition]] = {}
        share = 0.5 if teacher is not None else 1.0
        for index, (name, layer) in enumerate(candidates):
            ctx.progress(share * 0.8 * index / len(candidates))
            reason = _why_not(name, layer, config)
            if reason is None:
                decomps[name] = [decompose(layer, form) for form in _forms(layer, config)]
            else:
                left_alone[name] = reason
        plan, energy, extra = plan_ranks(module, decomps, config, ctx, left_alone)
        factorized: dict[str, dict[str, Any]] = {}
        for name, (d, ranks) in plan.items():
            factorized[name] = {**d.describe_ranks(ranks), **extra.get(name, {})}
            replace_layer(module, name, factorize(d, ranks))
        state.module = module = _flatten_sequential(module)
        ctx.progress(share)
        after = count_parameters(module)
        report: dict[str, Any] = {
            "rank_by": config.rank_by,
            **extra.get("", {}),
            "energy_threshold": round(energy, 4),
            "conv": config.conv,
            "parameters_before": before,
            "parameters_after": after,
            "parameter_fraction": round(after / max(before, 1), 4),
            "factorized": factorized,
            "left_alone": left_alone,
        }
        if config.rank_by == "ratio":
            report["target_ratio"] = config.ratio
        if is_hf_model(module):
            report["output_format_note"] = (
                "a factorized transformer no longer matches its config.json: delivered as ONNX"
            )
        if teacher is not None and config.heal is not None and factorized:
            from compressor.techniques.distillation.handler import identity_layer_map, training_data

            def heal_progress(fraction: float) -> None:
                ctx.progress(0.5 + 0.5 * fraction)

            report["heal"] = distill(
                teacher=teacher,
                student=module,
                data=training_data(state, ctx),
                config=config.heal,
                layer_map=identity_layer_map(module),
                progress=heal_progress,
            )
        ctx.progress(1.0)
        return report


def _why_not(name: str, layer: nn.Module, config: LowRankConfig) -> str | None:
    if any(s in name for s in config.exclude):
        return "excluded by the recipe"
    if isinstance(layer, nn.Conv2d) and layer.groups != 1:
        return f"grouped convolution (groups={layer.groups}) is already factorized"
    if isinstance(layer, nn.Conv2d) and config.conv == "tucker2" and layer.kernel_size == (1, 1):
        return "a 1x1 convolution has no spatial core for Tucker-2; use conv 'channel_svd'"
    return None


def _forms(layer: nn.Module, config: LowRankConfig) -> list[str]:
    """The factorized forms a layer is tried in; the first serves the energy modes."""
    if not isinstance(layer, nn.Conv2d) or config.conv == "channel_svd":
        return ["channel_svd"]
    if config.conv == "tucker2":
        return ["tucker2"]
    spatial = layer.kernel_size != (1, 1)
    return (
        ["channel_svd", "tucker2"] if spatial and config.rank_by == "speedup" else ["channel_svd"]
    )


def _flatten_sequential(module: nn.Module) -> nn.Module:
    # A plain nn.Sequential model stays one flat Sequential of layers after factorization, so
    # formats that describe models as a list of layers can still describe it.
    if not isinstance(module, nn.Sequential):
        return module
    flat: list[nn.Module] = []
    for child in module.children():
        inner = _flatten_sequential(child)
        flat.extend(inner.children() if isinstance(inner, nn.Sequential) else [inner])
    return nn.Sequential(*flat)
