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
"""

from __future__ import annotations

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
