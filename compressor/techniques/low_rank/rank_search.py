"""Per-layer rank choice from the saving the target sees, greedy in the manner of AIMET's
spatial-SVD compression-ratio selection.

Each factorizable layer is timed alone, at the target's batch size and the input shape it
really receives, in its original form and at a ladder of ranks of every factorized form it has.
Timing runs in onnxruntime, where every factorized model is delivered, on the job's device: a
layer's cost in torch says little about it there (a rank-8 conv that torch runs barely faster
than the 32-channel original is 40% faster in onnxruntime). A layer whose factorized form is
never faster is left alone with that reason. Then, starting from the original model, the move
with the most time saved per unit of spectral energy lost is taken, again and again, until the
model's estimated latency reaches 1/speedup of the original. When timing would take too long,
or a layer cannot be exported alone, multiply-adds stand in for time.

``plan_ranks`` is the step's entry: it picks ranks by the config's mode (kept energy, a
parameter ratio, or this measured search, checked on the whole factorized model).
"""

from __future__ import annotations

import copy
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compressor.measure.session_timing import session_runs
from compressor.techniques.base import StepContext
from compressor.techniques.low_rank.config import LowRankConfig
from compressor.techniques.low_rank.factorization import Decomposition, factorize, replace_layer
from compressor.training import is_hf_model

FRACTIONS = (1 / 16, 1 / 8, 3 / 16, 1 / 4, 3 / 8, 1 / 2, 5 / 8, 3 / 4)


@dataclass
class Candidate:
    ranks: tuple[int, ...]
    cost: float
    energy: float
    form: Any = None  # the decomposition these ranks cut


@dataclass
class LayerChoice:
    original: float
    candidates: list[Candidate] = field(default_factory=list)
    chosen: Candidate | None = None

    @property
    def cost(self) -> float:
        return self.original if self.chosen is None else self.chosen.cost

    @property
    def energy(self) -> float:
        return 1.0 if self.chosen is None else self.chosen.energy


def layer_inputs(
    model: nn.Module, names: list[str], run: Callable[[nn.Module], Any]
) -> dict[str, torch.Tensor]:
    """The input each named layer receives when ``run`` calls the model once."""
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Callable[..., None]:
        # A forward hook that returns a value replaces the layer's output: return nothing.
        def hook(_m: nn.Module, args: tuple[Any, ...], _out: Any) -> None:
            seen.setdefault(name, args[0].detach())

        return hook

    handles = [model.get_submodule(n).register_forward_hook(keep(n)) for n in names]
    try:
        with torch.no_grad():
            run(model)
    finally:
        for h in handles:
            h.remove()
    return seen


def macs(module: nn.Module, x: torch.Tensor) -> float:
    total = 0.0

    def count(m: nn.Module, _args: Any, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Linear):
            total += out.numel() * m.in_features
        elif isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            total += out.numel() * (m.in_channels // m.groups) * kh * kw

    leaves = [m for m in module.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
    return total


def seconds(module: nn.Module, *inputs: torch.Tensor, repeats: int = 7) -> float:
    """Fastest of runs in onnxruntime on the training device (one CPU thread, as measurement
    runs by default), after two warm-ups: the fastest is what other load on the machine
    disturbs least, and the choices only compare costs."""
    import onnxruntime as ort

    from compressor.training import training_device

    names = [f"input_{i}" for i in range(len(inputs))]
    with tempfile.TemporaryDirectory(prefix="modelpress-rank-") as tmp:
        path = Path(tmp) / "layer.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python values in HF models
            torch.onnx.export(module, inputs, str(path), input_names=names, dynamo=False)
        graph = path.read_bytes()
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if training_device().type == "cuda":
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(graph, options, providers=providers)
    wanted = {i.name for i in session.get_inputs()}  # the exporter drops unused inputs
    feed = {n: x.numpy() for n, x in zip(names, inputs, strict=True) if n in wanted}
    return min(session_runs(session, feed, warmup=2, repeats=repeats))


def ladder(full: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Ranks at fixed fractions of the full ones. A rung that keeps a mode's full rank is left
    out: it cuts nothing there and only adds a layer (Tucker-2 of a 1-channel stem conv)."""
    rungs = {tuple(max(1, round(f * r)) for r in full) for f in FRACTIONS}
    return sorted(r for r in rungs if all(k < f for k, f in zip(r, full, strict=True)))


def greedy(choices: dict[str, LayerChoice], rest: float, speedup: float, floor: float) -> float:
    """Lower ranks, best saving per energy lost first, until rest + layers <= total / speedup.
    Returns the estimated speed-up reached."""
    total = rest + sum(c.original for c in choices.values())
    goal = total / speedup
    while rest + sum(c.cost for c in choices.values()) > goal:
        best: tuple[float, LayerChoice, Candidate] | None = None
        for choice in choices.values():
            for cand in choice.candidates:
                gain = choice.cost - cand.cost
                if gain <= 0 or cand.energy < floor:
                    continue
                score = gain / max(choice.energy - cand.energy, 1e-6)
                if best is None or score > best[0]:
                    best = (score, choice, cand)
        if best is None:
            break
        best[1].chosen = best[2]
    return total / max(rest + sum(c.cost for c in choices.values()), 1e-12)


def measure_choices(
    layers: dict[str, tuple[list[Any], torch.Tensor]],
    build: Callable[[Any, tuple[int, ...]], nn.Module],
    energy_of: Callable[[Any, tuple[int, ...]], float],
    *,
    budget_s: float,
) -> tuple[dict[str, LayerChoice], str]:
    """Cost of every layer and of each rung of each of its factorized forms: timed while the
    budget lasts and every layer exports, else multiply-adds for all (mixing the two units
    would compare nothing)."""
    started = time.monotonic()
    for unit, cost in (("latency", seconds), ("macs", macs)):
        choices: dict[str, LayerChoice] = {}
        try:
            for name, (forms, x) in layers.items():
                if unit == "latency" and time.monotonic() - started > budget_s:
                    break
                if not any(ladder(form.full) for form in forms):
                    continue  # nothing to cut: the caller says so
                choice = LayerChoice(original=cost(forms[0].layer, x))
                for form in forms:
                    for ranks in ladder(form.full):
                        factored = build(form, ranks)
                        choice.candidates.append(
                            Candidate(ranks, cost(factored, x), energy_of(form, ranks), form)
                        )
                choices[name] = choice
            else:
                return choices, unit
        except Exception:  # a layer the exporter or runtime refuses: count for every layer
            if unit == "macs":
                raise
    raise AssertionError("multiply-adds always complete")


CHECKS = 3  # whole-model timings of the chosen ranks; each short one raises the aim once
# Two in-process timings of a small model, moments apart on a shared machine, differ by up to
# a tenth: a check passes only this far past the goal, so that the report's fresh-process
# measurement still finds the goal met.
CHECK_MARGIN = 1.1


def _energy_for_ratio(decomps: list[Decomposition], ratio: float, min_saving: float) -> float:
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


def plan_ranks(
    module: nn.Module,
    decomps: dict[str, list[Decomposition]],
    config: LowRankConfig,
    ctx: StepContext,
    left_alone: dict[str, str],
) -> tuple[dict[str, Any], float, dict[str, Any]]:
    """Ranks per layer by the config's mode, the energy floor used, and per-layer extras."""
    if config.rank_by == "speedup":
        plan, extra = _plan_by_speedup(module, decomps, config, ctx, left_alone)
        return plan, energy_floor(config, ctx), extra
    first = {name: forms[0] for name, forms in decomps.items()}
    if config.rank_by == "ratio":
        energy = _energy_for_ratio(list(first.values()), config.ratio, config.min_saving)
    else:
        energy = config.energy
    return _plan_by_energy(first, energy, config, left_alone), energy, {}


def energy_floor(config: LowRankConfig, ctx: StepContext) -> float:
    if config.min_energy is not None:
        return config.min_energy
    return 0.25 if config.heal is not None or ctx.healed_later else 0.5


def _plan_by_energy(
    decomps: dict[str, Decomposition],
    energy: float,
    config: LowRankConfig,
    left_alone: dict[str, str],
) -> dict[str, tuple[Decomposition, tuple[int, ...]]]:
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
    decomps: dict[str, list[Decomposition]],
    config: LowRankConfig,
    ctx: StepContext,
    left_alone: dict[str, str],
) -> tuple[dict[str, tuple[Decomposition, tuple[int, ...]]], dict[str, Any]]:
    """Ranks from measured per-layer cost at the target batch size (py)."""
    named = {
        k: torch.from_numpy(v)
        for k, v in _batch(ctx.calibration.tensors, ctx.target.batch_size).items()
    }
    whole_model = _Called(module, list(named))
    tensors = tuple(named.values())
    inputs = layer_inputs(module, list(decomps), lambda _m: whole_model(*tensors))
    layers = {n: (forms, inputs[n]) for n, forms in decomps.items() if n in inputs}
    for name in set(decomps) - set(layers):
        left_alone[name] = "not reached by the model's forward pass"
    choices, unit = measure_choices(
        layers, factorize, Decomposition.energy_at, budget_s=config.timing_budget_s
    )
    for name in set(layers) - set(choices):
        left_alone[name] = "its weight has rank 1 already: no lower rank to factorize at"
    # Timed whole even when layers were counted: the check below then corrects the count.
    whole = _whole_seconds(whole_model, tensors)
    layers_total = sum(c.original for c in choices.values())
    rest = max(0.0, whole - layers_total) if whole is not None and unit == "latency" else 0.0
    floor = energy_floor(config, ctx)
    reached = greedy(choices, rest, config.speedup, floor)
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
    choices: dict[str, LayerChoice],
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
        trial = factorized_copy(whole_model.model, _chosen_plan(choices))
        after = _whole_seconds(_Called(trial, whole_model.names), tensors)
        if after is None:
            break
        checked.append(round(whole / after, 3))
        if checked[-1] >= speedup * CHECK_MARGIN or len(checked) == CHECKS:
            break
        # Layers timed (or counted) alone miss what the runtime fuses and overlaps between
        # them: aim past the goal by the shortfall the whole model showed, and check again.
        aim *= speedup * CHECK_MARGIN / checked[-1]
        reached = greedy(choices, rest, aim, floor)
        if all(c.chosen is before[n] for n, c in choices.items()):
            break  # no rank left to lower above the energy floor
    return reached, checked


def _whole_seconds(model: nn.Module, tensors: tuple[torch.Tensor, ...]) -> float | None:
    try:
        return seconds(model, *tensors, repeats=15)
    except Exception:  # the exporter raises many unrelated types; layers alone still count
        return None


def _chosen_plan(
    choices: dict[str, LayerChoice],
) -> dict[str, tuple[Decomposition, tuple[int, ...]]]:
    return {n: (c.chosen.form, c.chosen.ranks) for n, c in choices.items() if c.chosen}


def factorized_copy(
    module: nn.Module, plan: dict[str, tuple[Decomposition, tuple[int, ...]]]
) -> nn.Module:
    trial = copy.deepcopy(module)
    for name, (d, ranks) in plan.items():
        replace_layer(trial, name, factorize(d, ranks))
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
