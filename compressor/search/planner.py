"""Which candidates a goal job tries, round by round, from what the earlier rounds measured.

The search walks one knob per objective, on a log scale, and lets the held-out budget check
decide where to stop; nothing here is tuned to a particular model:

- size: the fraction of weights kept (``density``). Round 1 brackets it (int8 alone, then a few
  densities a decade apart); later rounds cut the bracket between the sparsest candidate that
  met the budget and the densest that missed it into thirds, until the two are within 25%.
- latency: the fraction of units removed by structured pruning (``amount``), bracketed and cut
  the same way, and int8 with the ``fallback`` MatMuls of largest measured int8 error kept in
  float (mixed precision by measured sensitivity): doubled from 0 until the budget is met, then
  bisected down to the fewest that meet it.

Each proposal is a whole recipe in Deep Compression's order: prune (in stages, each healed by
distillation from the original when there is training data), drop dead units, quantize.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compressor.errors import InvalidRecipeError
from compressor.recipe import Recipe, check_recipe_for_kind
from compressor.search.goal import Goal
from compressor.search.llm_settings import llm_settings
from compressor.target import Target
from compressor.techniques import (
    DistillationConfig,
    LowRankConfig,
    PruningConfig,
    QuantizationConfig,
    StructuredPruningConfig,
    TechniqueConfig,
    WeightSharingConfig,
)

MAX_ROUNDS = 6
CONVERGED_RATIO = 1.25  # the bracket's ends this close (as a ratio) are as good as one point
FIRST_DENSITIES = (0.25, 0.1, 0.04)
FIRST_AMOUNTS = (0.25, 0.5)
MAX_FALLBACK = 64
# Removing fewer units than this cannot buy a measurable speedup: the walk stops stepping back.
MIN_AMOUNT = 0.05
LOW_RANK_SPEEDUP = 2.0
# A stage removes at most this share of what is left, so healing can follow (Han et al. 2015
# pruned iteratively; one cut to 97% sparsity loses what a schedule keeps).
STAGE_KEEP = 1 / 3
# Weight sharing's codebook sizes, tried in turn on the chosen density (4-bit, then 6-bit).
SHARED_VALUES = (16, 64)


@dataclass(frozen=True)
class SearchContext:
    """What the search knows about the job before it runs anything."""

    kind: str  # hf, onnx, architecture, ...
    runtime: str
    device: str
    has_train: bool
    has_calibration: bool
    causal_lm: bool = False

    @classmethod
    def of_job(
        cls,
        kind: str,
        target: Target,
        data: Mapping[str, str],
        inspection: Mapping[str, Any] | None = None,
    ) -> SearchContext:
        """From the job's model kind, resolved target, dataset roles and inspection."""
        return cls(
            kind=kind,
            runtime=target.runtime,
            device=target.device,
            has_train="train" in data,
            has_calibration="calibration" in data,
            causal_lm=(inspection or {}).get("kind") == "causal_lm",
        )


@dataclass(frozen=True)
class Proposal:
    recipe: Recipe
    purpose: str
    knob: str | None = None  # "density", "amount", "fallback" or "shared"
    value: float | None = None


@dataclass(frozen=True)
class Outcome:
    """A finished candidate, as the planner needs it."""

    proposal: Proposal
    meets_budget: bool


def _heal(ctx: SearchContext, goal: Goal, stages: int) -> list[TechniqueConfig]:
    if not ctx.has_train or not goal.allows("distillation"):
        return []
    # The time budget bounds healing: each stage gets a share of it (at least a few seconds).
    share = max(5.0, goal.time_budget_s / (12 * max(stages, 1)))
    return [DistillationConfig(student="current", epochs=15, max_seconds=share)]


def _quantize(
    ctx: SearchContext, goal: Goal, *, per_channel: bool, fallback: int = 0
) -> list[TechniqueConfig]:
    if not goal.allows("quantization"):
        return []
    if ctx.device == "gpu":
        return [QuantizationConfig(scheme="fp16")]
    if ctx.runtime != "onnxruntime":
        return []
    # SmoothQuant moves activation outliers into per-channel weight scales; with one scale per
    # tensor it cannot help, and its vectors cost bytes (about 15% of a pruned MLP's download).
    smoothing = {} if per_channel else {"smoothing": 0.0}
    return [
        QuantizationConfig(
            scheme="int8_dynamic", per_channel=per_channel, float_fallback=fallback, **smoothing
        )
    ]


def _mixed(ctx: SearchContext, goal: Goal, fallback: int) -> Proposal | None:
    steps = _quantize(ctx, goal, per_channel=True, fallback=fallback)
    if not steps or ctx.device == "gpu":
        return None
    return Proposal(
        Recipe(steps=steps),
        f"int8 with the {fallback} most error-prone MatMul(s) kept in float",
        "fallback",
        fallback,
    )


def _stages(density: float) -> list[float]:
    """Sparsities of an iterative schedule ending at ``1 - density``."""
    count = max(1, math.ceil(math.log(density) / math.log(STAGE_KEEP) - 1e-9))
    return [round(1 - density ** ((k + 1) / count), 4) for k in range(count)]


def _pruned(
    ctx: SearchContext, goal: Goal, density: float, *, shared_values: int | None = None
) -> Proposal | None:
    if not goal.allows("pruning"):
        return None
    steps: list[TechniqueConfig] = []
    stages = _stages(density)
    for sparsity in stages:
        steps.append(PruningConfig(sparsity=sparsity, scope="global"))
        steps += _heal(ctx, goal, len(stages))
    if ctx.kind != "hf" and goal.allows("structured_pruning"):
        steps.append(StructuredPruningConfig(dead_only=True))
    if shared_values is not None:
        steps.append(WeightSharingConfig(clusters=shared_values))
    steps += _quantize(ctx, goal, per_channel=False)
    purpose = (
        f"keep {density:.3g} of the weights ({len(stages)} pruning stage(s)"
        + (", healed" if _heal(ctx, goal, 1) else "")
        + ")"
    )
    if shared_values is None:
        return Proposal(Recipe(steps=steps), purpose, "density", density)
    purpose += f", {shared_values} shared values per tensor"
    return Proposal(Recipe(steps=steps), purpose, "shared", shared_values)


def _narrowed(ctx: SearchContext, goal: Goal, amount: float) -> Proposal | None:
    if not goal.allows("structured_pruning"):
        return None
    steps: list[TechniqueConfig] = [StructuredPruningConfig(amount=amount)]
    steps += _heal(ctx, goal, 1)
    steps += _quantize(ctx, goal, per_channel=True)
    return Proposal(Recipe(steps=steps), f"remove {amount:.3g} of the units", "amount", amount)


def _quantized_only(ctx: SearchContext, goal: Goal) -> list[Proposal]:
    proposals = []
    for per_channel in (False, True):
        steps = _quantize(ctx, goal, per_channel=per_channel)
        if steps:
            label = "per channel" if per_channel else "per tensor"
            # Per channel is where the latency walk's fallback knob starts (0 kept float).
            knob = ("fallback", 0) if per_channel and goal.objective == "latency" else (None, None)
            proposals.append(Proposal(Recipe(steps=steps), f"quantization alone ({label})", *knob))
        if ctx.device == "gpu":
            break  # one fp16 candidate
    return proposals


def _reshaped(ctx: SearchContext, goal: Goal) -> list[Proposal]:
    """Latency's other routes, once each: factorized layers, and a derived half-size student
    (which needs training data to learn anything)."""
    proposals = []
    if goal.allows("low_rank"):
        steps: list[TechniqueConfig] = [LowRankConfig(rank_by="speedup", speedup=LOW_RANK_SPEEDUP)]
        steps += _heal(ctx, goal, 1) + _quantize(ctx, goal, per_channel=True)
        proposals.append(
            Proposal(Recipe(steps=steps), f"low-rank factorization for {LOW_RANK_SPEEDUP:g}x")
        )
    if ctx.has_train and goal.allows("distillation"):
        share = max(10.0, goal.time_budget_s / 6)
        student = DistillationConfig(student="derived", epochs=30, max_seconds=share)
        steps = [student, *_quantize(ctx, goal, per_channel=True)]
        proposals.append(Proposal(Recipe(steps=steps), "a derived half-size student, distilled"))
    return proposals


def first_round(goal: Goal, ctx: SearchContext) -> list[Proposal]:
    """Round 1: quantization alone, and the knob's bracket (and, for latency, the routes that
    have no knob here). A causal LM's settings are few: all of them in this one round."""
    if ctx.causal_lm:
        return [
            Proposal(Recipe(steps=[step]), purpose)
            for step, purpose in llm_settings(ctx.runtime, goal)
        ]
    proposals = _quantized_only(ctx, goal)
    if goal.objective == "size":
        knobbed = [_pruned(ctx, goal, d) for d in FIRST_DENSITIES]
    else:
        knobbed = [_narrowed(ctx, goal, a) for a in FIRST_AMOUNTS]
        proposals += _reshaped(ctx, goal)
    return proposals + [p for p in knobbed if p is not None]


def _bracket(outcomes: Sequence[Outcome], knob: str) -> tuple[float | None, float | None]:
    """The most compressed value that met the budget, and the least compressed that missed
    it beyond that one (lower density, fewer float MatMuls, higher amount compress more)."""
    tried = [(o.proposal.value, o.meets_budget) for o in outcomes if o.proposal.knob == knob]
    more = (lambda v: -v) if knob in ("density", "fallback") else (lambda v: v)
    met = [v for v, ok in tried if ok and v is not None]
    best = max(met, key=more) if met else None
    missed = [
        v for v, ok in tried if not ok and v is not None and (best is None or more(v) > more(best))
    ]
    worst = min(missed, key=more) if missed else None
    return best, worst


def next_round(goal: Goal, ctx: SearchContext, outcomes: Sequence[Outcome]) -> list[Proposal]:
    """The next values of each knob, or nothing once every bracket has closed."""
    if ctx.causal_lm:
        return []
    if goal.objective == "size":
        return _next_on_knob(goal, ctx, outcomes, "density") or _next_shared(goal, ctx, outcomes)
    return _next_on_knob(goal, ctx, outcomes, "amount") + _next_fallback(goal, ctx, outcomes)


def _next_shared(goal: Goal, ctx: SearchContext, outcomes: Sequence[Outcome]) -> list[Proposal]:
    """Weight sharing on the sparsest density that met the budget: fewest values first."""
    best, _ = _bracket(outcomes, "density")
    if best is None or not goal.allows("weight_sharing"):
        return []
    shared = [o for o in outcomes if o.proposal.knob == "shared"]
    if any(o.meets_budget for o in shared) or len(shared) >= len(SHARED_VALUES):
        return []
    proposal = _pruned(ctx, goal, best, shared_values=SHARED_VALUES[len(shared)])
    return [proposal] if proposal is not None else []


def _next_fallback(goal: Goal, ctx: SearchContext, outcomes: Sequence[Outcome]) -> list[Proposal]:
    """Integers: double until the budget is met, then bisect towards the fewest that meet it."""
    tried = {o.proposal.value for o in outcomes if o.proposal.knob == "fallback"}
    if not tried:
        return []
    best, worst = _bracket(outcomes, "fallback")
    if best is None:
        value = max(2, int(2 * max(v for v in tried if v is not None)))
        if value > MAX_FALLBACK:
            return []
    else:
        low = int(worst) if worst is not None else -1
        if best - low <= 1:
            return []
        value = (low + int(best)) // 2 if low >= 0 else int(best) // 2
        if value in tried:
            return []
    proposal = _mixed(ctx, goal, value)
    return [proposal] if proposal is not None else []


def _next_on_knob(
    goal: Goal, ctx: SearchContext, outcomes: Sequence[Outcome], knob: str
) -> list[Proposal]:
    build = _pruned if knob == "density" else _narrowed
    best, worst = _bracket(outcomes, knob)
    tried = {o.proposal.value for o in outcomes if o.proposal.knob == knob}
    if best is None and worst is None:
        return []
    if worst is None:  # everything tried met the budget: go further
        assert best is not None
        values = [best / 2.5, best / 6] if knob == "density" else [min(0.9, best + 0.2)]
    elif best is None:  # nothing met it: step back towards the original
        values = [min(0.9, worst * 2.5)] if knob == "density" else [worst / 2]
        if knob == "density" and worst >= 0.5 or knob == "amount" and worst / 2 < MIN_AMOUNT:
            return []
    else:
        low, high = sorted((best, worst))
        if high / low < CONVERGED_RATIO:
            return []
        values = [low * (high / low) ** (1 / 3), low * (high / low) ** (2 / 3)]
    proposals = []
    for value in values:
        value = round(value, 4)
        if value in tried or not 0.0 < value < 1.0:
            continue
        proposal = build(ctx, goal, value)
        if proposal is not None:
            proposals.append(proposal)
    return proposals


def applicable(
    proposals: Sequence[Proposal],
    kind: str,
    target: Target,
    inspection: dict[str, Any] | None,
) -> list[Proposal]:
    """The proposals that pass the same checks a submitted recipe must pass."""
    kept = []
    for proposal in proposals:
        try:
            proposal.recipe.check_target(target)
            check_recipe_for_kind(proposal.recipe, kind, target, inspection=inspection)  # type: ignore[arg-type]
        except InvalidRecipeError:
            continue
        kept.append(proposal)
    return kept
