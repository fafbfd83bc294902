"""Per-layer rank choice from the saving the target sees, greedy in the manner of AIMET's
spatial-SVD compression-ratio selection.

Each factorizable layer is timed alone, at the target's batch size and the input shape it
really receives, in its original form and at a ladder of ranks. A layer whose factorized form
is never faster is left alone with that reason. Then, starting from the original model, the
move with the most time saved per unit of spectral energy lost is taken, again and again, until
the model's estimated latency reaches 1/speedup of the original. When timing would take too
long, multiply-adds stand in for time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

FRACTIONS = (1 / 16, 1 / 8, 3 / 16, 1 / 4, 3 / 8, 1 / 2, 5 / 8, 3 / 4)


@dataclass
class Candidate:
    ranks: tuple[int, ...]
    cost: float
    energy: float


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


def seconds(module: nn.Module, x: torch.Tensor, repeats: int = 7) -> float:
    """Median of single-thread runs, after one warm-up: what one layer costs on a CPU core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            module(x)
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                module(x)
                runs.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return sorted(runs)[len(runs) // 2]


def ladder(full: tuple[int, ...]) -> list[tuple[int, ...]]:
    rungs = {tuple(max(1, round(f * r)) for r in full) for f in FRACTIONS}
    return sorted(rungs)


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
    layers: dict[str, tuple[Any, torch.Tensor]],
    build: Callable[[Any, tuple[int, ...]], nn.Module],
    energy_of: Callable[[Any, tuple[int, ...]], float],
    *,
    budget_s: float,
) -> tuple[dict[str, LayerChoice], str]:
    """Cost of every layer and rung: timed while the budget lasts, else multiply-adds for all
    (mixing the two units would compare nothing)."""
    started = time.monotonic()
    for unit, cost in (("latency", seconds), ("macs", macs)):
        choices: dict[str, LayerChoice] = {}
        for name, (decomp, x) in layers.items():
            if unit == "latency" and time.monotonic() - started > budget_s:
                break
            choice = LayerChoice(original=cost(decomp.layer, x))
            for ranks in ladder(decomp.full):
                factored = build(decomp, ranks)
                choice.candidates.append(
                    Candidate(ranks, cost(factored, x), energy_of(decomp, ranks))
                )
            choices[name] = choice
        else:
            return choices, unit
    raise AssertionError("multiply-adds always complete")
