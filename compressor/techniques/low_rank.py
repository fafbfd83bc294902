"""Low-rank factorization: Linear by truncated SVD, Conv2d by channel SVD or Tucker-2.

Each factorized layer becomes a short ``nn.Sequential`` computing the same map with fewer
parameters and multiply-adds. A factorized Hugging Face model no longer matches its
config.json, so it can only leave as ONNX.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from compressor.errors import InvalidRecipeError, UnsupportedModelError
from compressor.students import count_parameters
from compressor.target import Target
from compressor.techniques.base import ModelState, Stage, StepConfig, StepContext, register
from compressor.training import TrainingConfig, distill, is_hf_model


class LowRankConfig(StepConfig):
    technique: Literal["low_rank"] = "low_rank"
    rank_by: Literal["energy", "ratio"] = Field(
        "energy",
        description="'energy': smallest rank keeping `energy` of the squared singular values; "
        "'ratio': rank giving each layer `ratio` of its parameters.",
    )
    energy: float = Field(0.9, gt=0.0, le=1.0)
    ratio: float = Field(0.5, gt=0.0, lt=1.0)
    conv: Literal["channel_svd", "tucker2"] = Field(
        "channel_svd",
        description="'channel_svd': kxk conv to r channels then 1x1; 'tucker2': 1x1, kxk, 1x1.",
    )
    min_saving: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="Leave a layer alone unless factorizing removes at least this fraction "
        "of its parameters (multiply-adds fall in the same proportion).",
    )
    exclude: tuple[str, ...] = Field((), description="Layer-name substrings left alone.")
    heal: TrainingConfig | None = Field(
        None, description="Fine-tune afterwards by distilling from the unfactorized model."
    )


@dataclass
class _Plan:
    rank: int | tuple[int, int]
    full_rank: int | tuple[int, int]
    energy_kept: float | tuple[float, float]
    old: int
    new: int


def _rank_for_energy(singular: torch.Tensor, energy: float) -> int:
    power = singular.double() ** 2
    cumulative = torch.cumsum(power, 0) / power.sum().clamp(min=1e-30)
    return int(torch.searchsorted(cumulative, torch.tensor(energy, dtype=cumulative.dtype))) + 1


def _kept(singular: torch.Tensor, rank: int) -> float:
    power = singular.double() ** 2
    return round(float(power[:rank].sum() / power.sum().clamp(min=1e-30)), 4)


def _matrix_plan(matrix: torch.Tensor, extra_out: int, config: LowRankConfig) -> tuple[_Plan, Any]:
    """Plan for M (out x k) ~ A (out x r) @ B (r x k); extra_out: the second factor's width."""
    out, inner = matrix.shape
    u, s, vh = torch.linalg.svd(matrix.double(), full_matrices=False)
    full = min(out, inner)
    if config.rank_by == "energy":
        rank = min(_rank_for_energy(s, config.energy), full)
    else:
        rank = max(1, int(config.ratio * out * inner / (out + inner)))
    rank = min(rank, full)
    plan = _Plan(rank, full, _kept(s, rank), out * inner, rank * (inner + extra_out))
    return plan, (u, s, vh)


def _linear_factors(layer: nn.Linear, config: LowRankConfig) -> tuple[_Plan, Any]:
    w = layer.weight.detach()
    return _matrix_plan(w, w.shape[0], config)


def _split(factors: Any, rank: int) -> tuple[Any, Any]:
    # sqrt(S) on both sides keeps the two factors on the same scale, which healing likes.
    u, s, vh = factors
    root = s[:rank].sqrt()
    return u[:, :rank] * root, root[:, None] * vh[:rank]


def _copy_bias(source: nn.Module, dest: nn.Module) -> None:
    if isinstance(source.bias, torch.Tensor) and isinstance(dest.bias, torch.Tensor):
        dest.bias.copy_(source.bias.detach())


def _factor_linear(layer: nn.Linear, factors: Any, rank: int) -> nn.Module:
    left, right = _split(factors, rank)
    dtype = layer.weight.dtype
    first = nn.Linear(layer.in_features, rank, bias=False)
    second = nn.Linear(rank, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(right.to(dtype))
        second.weight.copy_(left.to(dtype))
        _copy_bias(layer, second)
    return nn.Sequential(first, second)


def _conv_kwargs(layer: nn.Conv2d) -> dict[str, Any]:
    return {
        "stride": layer.stride,
        "padding": layer.padding,
        "dilation": layer.dilation,
        "padding_mode": layer.padding_mode,
    }


def _channel_svd(layer: nn.Conv2d, config: LowRankConfig) -> tuple[_Plan, Any]:
    w = layer.weight.detach()
    return _matrix_plan(w.flatten(1), w.shape[0], config)


def _factor_channel_svd(layer: nn.Conv2d, factors: Any, rank: int) -> nn.Module:
    left, right = _split(factors, rank)
    kh, kw = layer.kernel_size
    dtype = layer.weight.dtype
    first = nn.Conv2d(layer.in_channels, rank, (kh, kw), bias=False, **_conv_kwargs(layer))
    second = nn.Conv2d(rank, layer.out_channels, 1, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(right.reshape(rank, layer.in_channels, kh, kw).to(dtype))
        second.weight.copy_(left.reshape(layer.out_channels, rank, 1, 1).to(dtype))
        _copy_bias(layer, second)
    return nn.Sequential(first, second)


def _tucker2(layer: nn.Conv2d, config: LowRankConfig) -> tuple[_Plan, Any]:
    w = layer.weight.detach().double()
    c_out, c_in, kh, kw = w.shape
    u_out, s_out, _ = torch.linalg.svd(w.flatten(1), full_matrices=False)
    u_in, s_in, _ = torch.linalg.svd(w.transpose(0, 1).flatten(1), full_matrices=False)
    full = (min(c_out, c_in * kh * kw), min(c_in, c_out * kh * kw))
    k2 = kh * kw

    def params(r_out: int, r_in: int) -> int:
        return c_in * r_in + r_in * r_out * k2 + r_out * c_out

    if config.rank_by == "energy":
        r_out = min(_rank_for_energy(s_out, config.energy), full[0])
        r_in = min(_rank_for_energy(s_in, config.energy), full[1])
    else:
        # Shrink both ranks by one factor until the three convolutions fit the ratio.
        budget = config.ratio * c_out * c_in * k2
        r_out, r_in = 1, 1
        for step in range(100, 0, -1):
            cand = (max(1, round(full[0] * step / 100)), max(1, round(full[1] * step / 100)))
            if params(*cand) <= budget:
                r_out, r_in = cand
                break
    plan = _Plan(
        (r_out, r_in),
        full,
        (_kept(s_out, r_out), _kept(s_in, r_in)),
        c_out * c_in * k2,
        params(r_out, r_in),
    )
    return plan, (u_out[:, :r_out], u_in[:, :r_in], w)


def _factor_tucker2(layer: nn.Conv2d, factors: Any, ranks: tuple[int, int]) -> nn.Module:
    u_out, u_in, w = factors
    r_out, r_in = ranks
    core = torch.einsum("oihw,or,is->rshw", w, u_out, u_in)
    dtype = layer.weight.dtype
    kh, kw = layer.kernel_size
    first = nn.Conv2d(layer.in_channels, r_in, 1, bias=False)
    middle = nn.Conv2d(r_in, r_out, (kh, kw), bias=False, **_conv_kwargs(layer))
    last = nn.Conv2d(r_out, layer.out_channels, 1, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(u_in.T.reshape(r_in, layer.in_channels, 1, 1).to(dtype))
        middle.weight.copy_(core.to(dtype))
        last.weight.copy_(u_out.reshape(layer.out_channels, r_out, 1, 1).to(dtype))
        _copy_bias(layer, last)
    return nn.Sequential(first, middle, last)


def _why_not(name: str, layer: nn.Module, config: LowRankConfig) -> str | None:
    if any(s in name for s in config.exclude):
        return "excluded by the recipe"
    if isinstance(layer, nn.Conv2d) and layer.groups != 1:
        return f"grouped convolution (groups={layer.groups}) is already factorized"
    if isinstance(layer, nn.Conv2d) and config.conv == "tucker2" and layer.kernel_size == (1, 1):
        return "a 1x1 convolution has no spatial core for Tucker-2; use conv 'channel_svd'"
    return None


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)


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


def _check_model(module: nn.Module, target: Target) -> None:
    if target.runtime == "torch" and is_hf_model(module):
        raise InvalidRecipeError(
            "low_rank changes the layers of a Hugging Face model so that it no longer matches "
            "its config.json; it can only be delivered as ONNX: set target.runtime to "
            "'onnxruntime'"
        )


@register("low_rank")
class LowRankHandler:
    stage: ClassVar[Stage] = Stage.TORCH

    def check(self, config: LowRankConfig, target: Target) -> None:
        return None

    def check_model(self, config: LowRankConfig, module: nn.Module, target: Target) -> None:
        """What only the loaded model tells: a factorized HF model cannot stay a HF model."""
        _check_model(module, target)

    def apply(self, config: LowRankConfig, state: ModelState, ctx: StepContext) -> dict[str, Any]:
        module: nn.Module = state.module
        _check_model(module, ctx.target)
        teacher = copy.deepcopy(module) if config.heal is not None else None
        before = count_parameters(module)
        factorized: dict[str, dict[str, Any]] = {}
        left_alone: dict[str, str] = {}
        candidates = [
            (n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)
        ]
        if not candidates:
            raise UnsupportedModelError("low_rank found no Linear or Conv2d layer")
        for index, (name, layer) in enumerate(candidates):
            ctx.progress(0.5 * index / len(candidates) if teacher else index / len(candidates))
            reason = _why_not(name, layer, config)
            if reason is not None:
                left_alone[name] = reason
                continue
            if isinstance(layer, nn.Linear):
                plan, factors = _linear_factors(layer, config)
            elif config.conv == "tucker2":
                plan, factors = _tucker2(layer, config)
            else:
                plan, factors = _channel_svd(layer, config)
            if plan.new > (1.0 - config.min_saving) * plan.old:
                left_alone[name] = (
                    f"rank {plan.rank} of {plan.full_rank} (keeping {plan.energy_kept} of the "
                    f"energy) needs {plan.new} parameters against {plan.old}: less than "
                    f"{config.min_saving:.0%} saved"
                )
                continue
            if isinstance(layer, nn.Linear):
                new = _factor_linear(layer, factors, int(plan.rank))  # type: ignore[arg-type]
            elif config.conv == "tucker2":
                new = _factor_tucker2(layer, factors, plan.rank)  # type: ignore[arg-type]
            else:
                new = _factor_channel_svd(layer, factors, int(plan.rank))  # type: ignore[arg-type]
            _replace(module, name, new)
            factorized[name] = {
                "kind": "linear_svd" if isinstance(layer, nn.Linear) else config.conv,
                "rank": list(plan.rank) if isinstance(plan.rank, tuple) else plan.rank,
                "full_rank": (
                    list(plan.full_rank) if isinstance(plan.full_rank, tuple) else plan.full_rank
                ),
                "energy_kept": (
                    list(plan.energy_kept)
                    if isinstance(plan.energy_kept, tuple)
                    else plan.energy_kept
                ),
                "parameters": [plan.old, plan.new],
            }
        state.module = module = _flatten_sequential(module)
        report: dict[str, Any] = {
            "rank_by": config.rank_by,
            "energy" if config.rank_by == "energy" else "ratio": (
                config.energy if config.rank_by == "energy" else config.ratio
            ),
            "conv": config.conv,
            "parameters_before": before,
            "parameters_after": count_parameters(module),
            "factorized": factorized,
            "left_alone": left_alone,
        }
        if is_hf_model(module):
            report["output_format_note"] = (
                "a factorized transformer no longer matches its config.json: delivered as ONNX"
            )
        if teacher is not None and config.heal is not None and factorized:
            from compressor.techniques.distillation import identity_layer_map, training_data

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
