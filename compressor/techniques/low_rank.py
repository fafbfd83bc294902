"""Low-rank factorization: Linear by truncated SVD, Conv2d by channel SVD or Tucker-2.

Each factorized layer becomes a short ``nn.Sequential`` computing the same map with fewer
parameters and multiply-adds. A factorized Hugging Face model no longer matches its
config.json, so it can only leave as ONNX.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from compressor.errors import InvalidRecipeError, UnsupportedModelError
from compressor.students import count_parameters
from compressor.target import Target
from compressor.techniques import rank_search
from compressor.techniques.base import ModelState, Stage, StepConfig, StepContext, register
from compressor.training import TrainingConfig, distill, is_hf_model


class LowRankConfig(StepConfig):
    technique: Literal["low_rank"] = "low_rank"
    rank_by: Literal["energy", "ratio", "speedup"] = Field(
        "speedup",
        description="Default 'speedup', or the mode whose own field is given. 'energy': each layer keeps the smallest rank holding `energy` of its squared "
        "singular values; 'ratio': one energy threshold for all layers, the highest that "
        "brings the factorizable layers to `ratio` of their parameters; 'speedup': each layer "
        "timed alone at the target batch size at a ladder of ranks, layers whose factorized "
        "form is not faster left alone, then ranks lowered greedily (most time saved per "
        "energy lost) until the model is estimated `speedup` times faster.",
    )
    speedup: float = Field(2.0, gt=1.0, le=50.0, description="rank_by 'speedup': the goal.")
    min_energy: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="rank_by 'speedup': no layer keeps less energy. Default 0.5, or 0.25 "
        "when the factorized layers are retrained: with `heal`, or a later distillation step "
        "into the current model.",
    )
    timing_budget_s: float = Field(
        30.0,
        gt=0.0,
        le=600.0,
        description="rank_by 'speedup': time allowed for timing layers; past it, "
        "multiply-adds stand in for latency.",
    )
    energy: float = Field(0.9, gt=0.0, le=1.0)
    ratio: float = Field(0.5, gt=0.0, lt=1.0)
    conv: Literal["auto", "channel_svd", "tucker2"] = Field(
        "auto",
        description="'channel_svd': kxk conv to r channels then 1x1; 'tucker2': 1x1, kxk, 1x1; "
        "'auto': with rank_by 'speedup', each conv's ranks in both forms are timed and the "
        "greedy search picks per layer; with 'energy' or 'ratio', channel_svd.",
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

    @model_validator(mode="before")
    @classmethod
    def _mode_from_its_field(cls, data: Any) -> Any:
        # A user who writes {"energy": 0.9} means energy ranks, not the measured-speed default.
        if isinstance(data, dict) and "rank_by" not in data:
            for mode in ("energy", "ratio"):
                if mode in data:
                    return {**data, "rank_by": mode}
        return data


CHECKS = 3  # whole-model timings of the chosen ranks; each short one raises the aim once
# Two in-process timings of a small model, moments apart on a shared machine, differ by up to
# a tenth: a check passes only this far past the goal, so that the report's fresh-process
# measurement still finds the goal met.
CHECK_MARGIN = 1.1


@dataclass
class _Decomposition:
    """A layer's spectra, computed once; ranks for any kept energy are read from them."""

    kind: str
    layer: nn.Module
    spectra: tuple[torch.Tensor, ...]
    full: tuple[int, ...]
    old: int
    cost: Callable[[tuple[int, ...]], int]
    factors: Any
    # The exact share of the weight's energy the factorized form keeps, where the spectra alone
    # do not give it (Tucker-2: the two modes' cuts compound).
    kept: Callable[[tuple[int, ...]], float] | None = None

    def ranks(self, energy: float) -> tuple[int, ...]:
        return tuple(
            min(_rank_for_energy(s, energy), f)
            for s, f in zip(self.spectra, self.full, strict=True)
        )

    def saves(self, energy: float, min_saving: float) -> bool:
        return self.cost(self.ranks(energy)) <= (1.0 - min_saving) * self.old

    def params_at(self, energy: float, min_saving: float) -> int:
        return self.cost(self.ranks(energy)) if self.saves(energy, min_saving) else self.old

    def describe(self, energy: float) -> dict[str, Any]:
        return self.describe_ranks(self.ranks(energy))

    def energy_at(self, ranks: tuple[int, ...]) -> float:
        if self.kept is not None:
            return self.kept(ranks)
        return min(_kept(s, r) for s, r in zip(self.spectra, ranks, strict=True))

    def describe_ranks(self, ranks: tuple[int, ...]) -> dict[str, Any]:
        one = len(ranks) == 1
        described: dict[str, Any] = {
            "kind": self.kind,
            "rank": ranks[0] if one else list(ranks),
            "full_rank": self.full[0] if one else list(self.full),
            "energy_kept": self.energy_at(ranks),
            "parameters": [self.old, self.cost(ranks)],
        }
        if not one:
            modes = [_kept(s, r) for s, r in zip(self.spectra, ranks, strict=True)]
            described["mode_energy_kept"] = modes
        return described


def _rank_for_energy(singular: torch.Tensor, energy: float) -> int:
    power = singular.double() ** 2
    cumulative = torch.cumsum(power, 0) / power.sum().clamp(min=1e-30)
    return int(torch.searchsorted(cumulative, torch.tensor(energy, dtype=cumulative.dtype))) + 1


def _kept(singular: torch.Tensor, rank: int) -> float:
    power = singular.double() ** 2
    return round(float(power[:rank].sum() / power.sum().clamp(min=1e-30)), 4)


def _decompose(layer: nn.Module, conv: str) -> _Decomposition:
    w = layer.weight.detach().double()  # type: ignore[operator]
    out, inner = w.shape[0], w[0].numel()
    if isinstance(layer, nn.Conv2d) and conv == "tucker2":
        c_in, k2 = w.shape[1], w.shape[2] * w.shape[3]
        u_out, s_out, _ = torch.linalg.svd(w.flatten(1), full_matrices=False)
        u_in, s_in, _ = torch.linalg.svd(w.transpose(0, 1).flatten(1), full_matrices=False)

        def tucker_cost(r: tuple[int, ...]) -> int:
            return c_in * r[1] + r[1] * r[0] * k2 + r[0] * out

        def tucker_kept(r: tuple[int, ...]) -> float:
            core = torch.einsum("oihw,or,is->rshw", w, u_out[:, : r[0]], u_in[:, : r[1]])
            return round(float(core.square().sum() / w.square().sum().clamp(min=1e-30)), 4)

        full = (min(out, c_in * k2), min(c_in, out * k2))
        factors = (u_out, u_in, w)
        return _Decomposition(
            "tucker2", layer, (s_out, s_in), full, out * inner, tucker_cost, factors, tucker_kept
        )
    u, s, vh = torch.linalg.svd(w.flatten(1), full_matrices=False)

    def svd_cost(r: tuple[int, ...]) -> int:
        return r[0] * (inner + out)

    kind = "linear_svd" if isinstance(layer, nn.Linear) else "channel_svd"
    return _Decomposition(kind, layer, (s,), (min(out, inner),), out * inner, svd_cost, (u, s, vh))


def _energy_for_ratio(decomps: list[_Decomposition], ratio: float, min_saving: float) -> float:
    # One kept-energy threshold for every layer, the largest whose parameters fit the ratio:
    # layers with fast-decaying spectra lose fewer ranks than a uniform per-layer cut would
    # take (a 10-class head cut to rank 2 costs most of the accuracy).
    budget = ratio * sum(d.old for d in decomps)
    low, high = 0.0, 1.0
    for _ in range(40):
        mid = (low + high) / 2
        if sum(d.params_at(mid, min_saving) for d in decomps) <= budget:
            low = mid
        else:
            high = mid
    return low


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


def _factor_tucker2(layer: nn.Conv2d, factors: Any, ranks: tuple[int, ...]) -> nn.Module:
    u_out, u_in, w = factors
    r_out, r_in = ranks
    u_out, u_in = u_out[:, :r_out], u_in[:, :r_in]
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


def _factorize(d: _Decomposition, ranks: tuple[int, ...]) -> nn.Module:
    if d.kind == "linear_svd":
        return _factor_linear(d.layer, d.factors, ranks[0])  # type: ignore[arg-type]
    if d.kind == "channel_svd":
        return _factor_channel_svd(d.layer, d.factors, ranks[0])  # type: ignore[arg-type]
    return _factor_tucker2(d.layer, d.factors, ranks)  # type: ignore[arg-type]


def _plan_by_energy(
    decomps: dict[str, _Decomposition],
    energy: float,
    config: LowRankConfig,
    left_alone: dict[str, str],
) -> dict[str, tuple[_Decomposition, tuple[int, ...]]]:
    plan = {}
    for name, d in decomps.items():
        if d.saves(energy, config.min_saving):
            plan[name] = (d, d.ranks(energy))
            continue
        details = d.describe(energy)
        left_alone[name] = (
            f"rank {details['rank']} of {details['full_rank']} (keeping "
            f"{details['energy_kept']} of the energy) needs {details['parameters'][1]} "
            f"parameters against {d.old}: less than {config.min_saving:.0%} saved"
        )
    return plan


def _plan_by_speedup(
    module: nn.Module,
    decomps: dict[str, list[_Decomposition]],
    config: LowRankConfig,
    ctx: StepContext,
    left_alone: dict[str, str],
) -> tuple[dict[str, tuple[_Decomposition, tuple[int, ...]]], dict[str, Any]]:
    """Ranks from measured per-layer cost at the target batch size (rank_search.py)."""
    named = {
        k: torch.from_numpy(v)
        for k, v in _batch(ctx.calibration.tensors, ctx.target.batch_size).items()
    }
    whole_model = _Called(module, list(named))
    tensors = tuple(named.values())
    inputs = rank_search.layer_inputs(module, list(decomps), lambda _m: whole_model(*tensors))
    layers = {n: (forms, inputs[n]) for n, forms in decomps.items() if n in inputs}
    for name in set(decomps) - set(layers):
        left_alone[name] = "not reached by the model's forward pass"
    choices, unit = rank_search.measure_choices(
        layers, _factorize, _Decomposition.energy_at, budget_s=config.timing_budget_s
    )
    for name in set(layers) - set(choices):
        left_alone[name] = "its weight has rank 1 already: no lower rank to factorize at"
    # Timed whole even when layers were counted: the check below then corrects the count.
    whole = _whole_seconds(whole_model, tensors)
    layers_total = sum(c.original for c in choices.values())
    rest = max(0.0, whole - layers_total) if whole is not None and unit == "latency" else 0.0
    floor = _energy_floor(config, ctx)
    reached = rank_search.greedy(choices, rest, config.speedup, floor)
    checked: list[float] = []
    if whole is not None:
        reached, checked = _check_whole(
            whole_model, tensors, choices, (whole, rest), (reached, config.speedup), floor
        )
    slower = bool(checked) and checked[-1] < 1.0
    if slower:  # what layers timed alone promised, the runtime did not deliver as a whole
        for choice in choices.values():
            choice.chosen = None
    scale, label = (1e3, "latency_ms") if unit == "latency" else (1e-6, "mmacs")
    plan = _chosen_plan(choices)
    extra: dict[str, Any] = {}
    for name, choice in choices.items():
        if choice.chosen is not None:
            extra[name] = {
                label: [round(choice.original * scale, 4), round(choice.cost * scale, 4)]
            }
            continue
        fastest = min(choice.candidates, key=lambda c: c.cost)
        if slower:
            left_alone[name] = (
                f"the factorized model as a whole ran at {checked[-1]}x the original's speed "
                "in the runtime: nothing factorized"
            )
            continue
        left_alone[name] = (
            f"not faster factorized: {label} {choice.original * scale:.4g} unfactorized, at best "
            f"{fastest.cost * scale:.4g} ({fastest.form.kind} rank {list(fastest.ranks)})"
            if fastest.cost >= choice.original
            else "not needed for the speed-up goal, or every faster rank keeps less than "
            f"{floor} of the energy"
        )
    extra[""] = {
        "cost": unit,
        "batch_size": ctx.target.batch_size,
        "target_speedup": config.speedup,
        "estimated_speedup": round(reached, 3),
    }
    if whole is not None:
        # Each entry: the whole factorized model timed against the original, in the runtime.
        extra[""]["checked_speedup"] = checked
    else:
        extra[""]["whole_model"] = "not timed (export failed): layers only, no check"
    return plan, extra


def _batch(tensors: dict[str, Any], batch_size: int) -> dict[str, Any]:
    """``batch_size`` rows of every model input, repeating rows when there are fewer."""
    out = {}
    for k, v in tensors.items():
        if k == "labels":
            continue
        reps = -(-batch_size // max(v.shape[0], 1))
        out[k] = (v if reps <= 1 else v.repeat(reps, axis=0))[:batch_size]
    return out


def _check_whole(
    whole_model: _Called,
    tensors: tuple[torch.Tensor, ...],
    choices: dict[str, rank_search.LayerChoice],
    seconds: tuple[float, float],
    speedups: tuple[float, float],
    floor: float,
) -> tuple[float, list[float]]:
    """Times the whole factorized model against the original and, while it falls short, raises
    the greedy search's aim by the shortfall. ``seconds``: the original whole and the part no
    layer accounts for; ``speedups``: estimated so far, and the goal. Returns the last
    estimate and each checked speed-up."""
    (whole, rest), (reached, speedup) = seconds, speedups
    checked: list[float] = []
    aim = speedup
    while True:
        before = {n: c.chosen for n, c in choices.items()}
        trial = _factorized_copy(whole_model.model, _chosen_plan(choices))
        after = _whole_seconds(_Called(trial, whole_model.names), tensors)
        if after is None:
            break
        checked.append(round(whole / after, 3))
        if checked[-1] >= speedup * CHECK_MARGIN or len(checked) == CHECKS:
            break
        # Layers timed (or counted) alone miss what the runtime fuses and overlaps between
        # them: aim past the goal by the shortfall the whole model showed, and check again.
        aim *= speedup * CHECK_MARGIN / checked[-1]
        reached = rank_search.greedy(choices, rest, aim, floor)
        if all(c.chosen is before[n] for n, c in choices.items()):
            break  # no rank left to lower above the energy floor
    return reached, checked


def _whole_seconds(model: nn.Module, tensors: tuple[torch.Tensor, ...]) -> float | None:
    try:
        return rank_search.seconds(model, *tensors, repeats=15)
    except Exception:  # the exporter raises many unrelated types; layers alone still count
        return None


def _chosen_plan(
    choices: dict[str, rank_search.LayerChoice],
) -> dict[str, tuple[_Decomposition, tuple[int, ...]]]:
    return {n: (c.chosen.form, c.chosen.ranks) for n, c in choices.items() if c.chosen}


def _factorized_copy(
    module: nn.Module, plan: dict[str, tuple[_Decomposition, tuple[int, ...]]]
) -> nn.Module:
    trial = copy.deepcopy(module)
    for name, (d, ranks) in plan.items():
        _replace(trial, name, _factorize(d, ranks))
    return trial


class _Called(nn.Module):
    """The whole model with positional tensor inputs and one tensor out, so the timer that
    exports layers exports it too."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> Any:
        if is_hf_model(self.model):
            return self.model(**dict(zip(self.names, tensors, strict=True)))[0]
        return self.model(*tensors)


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
        decomps: dict[str, list[_Decomposition]] = {}
        share = 0.5 if teacher is not None else 1.0
        for index, (name, layer) in enumerate(candidates):
            ctx.progress(share * 0.8 * index / len(candidates))
            reason = _why_not(name, layer, config)
            if reason is None:
                decomps[name] = [_decompose(layer, form) for form in _forms(layer, config)]
            else:
                left_alone[name] = reason
        plan, energy, extra = _plan(module, decomps, config, ctx, left_alone)
        factorized: dict[str, dict[str, Any]] = {}
        for name, (d, ranks) in plan.items():
            factorized[name] = {**d.describe_ranks(ranks), **extra.get(name, {})}
            _replace(module, name, _factorize(d, ranks))
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


def _energy_floor(config: LowRankConfig, ctx: StepContext) -> float:
    if config.min_energy is not None:
        return config.min_energy
    return 0.25 if config.heal is not None or ctx.healed_later else 0.5


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


def _plan(
    module: nn.Module,
    decomps: dict[str, list[_Decomposition]],
    config: LowRankConfig,
    ctx: StepContext,
    left_alone: dict[str, str],
) -> tuple[dict[str, Any], float, dict[str, Any]]:
    """Ranks per layer by the config's mode, the energy floor used, and per-layer extras."""
    if config.rank_by == "speedup":
        plan, extra = _plan_by_speedup(module, decomps, config, ctx, left_alone)
        return plan, _energy_floor(config, ctx), extra
    first = {name: forms[0] for name, forms in decomps.items()}
    if config.rank_by == "ratio":
        energy = _energy_for_ratio(list(first.values()), config.ratio, config.min_saving)
    else:
        energy = config.energy
    return _plan_by_energy(first, energy, config, left_alone), energy, {}
