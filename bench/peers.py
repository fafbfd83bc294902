"""The obvious peer beside our structured-pruning and low-rank rows, run through the same engine.

- Structured pruning: torch-pruning's own ``MagnitudePruner`` with ``MagnitudeImportance``
  (its defaults: L2, mean over the group), at our step's channel sparsity, with the layers our
  step left whole because their outputs are the model's outputs as its ``ignored_layers``.
- Low-rank: a plain truncated SVD of every layer our step factorized, at our rank (no rank
  search, no Tucker-2, no data-aware correction); where our step chose Tucker-2 for a conv, the
  SVD rank with no more parameters than ours.

Each peer is a step registered with the engine for this process only (the public recipe never
offers it), so the peer loads, heals, exports and is measured by exactly the code our row
goes through; only the first step differs. Its settings come from our run's report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from pydantic import TypeAdapter
from torch import nn

from bench.common import Row, guarded
from bench.page import LOSES
from compressor.recipe import Recipe
from compressor.report import CompressionReport, StepReport
from compressor.techniques import TechniqueConfig
from compressor.techniques.base import ModelState, Stage, StepConfig, StepContext, register

if TYPE_CHECKING:  # the pipeline imports every engine module; annotations only need its type
    from compressor.pipeline import CompressionResult

OUTPUT_LAYER = "its outputs are the model's outputs"
PRUNING_PEER = (
    "torch-pruning MagnitudePruner (MagnitudeImportance), same channel sparsity and ignored layers"
)
SVD_PEER = "plain truncated SVD at our ranks"


class MagnitudePeerConfig(StepConfig):
    technique: Literal["bench_peer_tp_magnitude"] = "bench_peer_tp_magnitude"
    amount: float
    ignored: tuple[str, ...]


class PlainSvdPeerConfig(StepConfig):
    technique: Literal["bench_peer_plain_svd"] = "bench_peer_plain_svd"
    ranks: dict[str, int]
    # Layers our step gave Tucker-2, whose SVD rank here matches their parameter count instead.
    matched: tuple[str, ...] = ()


def _widths(model: nn.Module) -> dict[str, int]:
    return {
        n: int(m.weight.shape[0])
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear | nn.Conv2d)
    }


class MagnitudePeer:
    stage: ClassVar[Stage] = Stage.TORCH

    def check(self, config: MagnitudePeerConfig, target: Any) -> None:
        return None

    def apply(
        self, config: MagnitudePeerConfig, state: ModelState, ctx: StepContext
    ) -> dict[str, Any]:
        import torch_pruning as tp

        from compressor.techniques.pruning.depgraph import example_inputs

        model = state.module
        before = _widths(model)
        pruner = tp.pruner.MagnitudePruner(
            model,
            example_inputs(ctx.calibration),
            importance=tp.importance.MagnitudeImportance(),
            pruning_ratio=config.amount,
            ignored_layers=[model.get_submodule(n) for n in config.ignored],
        )
        was_training = model.training
        model.eval()
        with torch.enable_grad():
            pruner.step()
        model.train(was_training)
        after = _widths(model)
        return {
            "peer": PRUNING_PEER,
            "amount": config.amount,
            "ignored_layers": list(config.ignored),
            "units": {n: {"before": before[n], "after": after[n]} for n in before},
        }


def _svd_layer(layer: nn.Module, rank: int) -> nn.Sequential:
    """``layer`` as two layers through ``rank`` channels: W ~ (U_r S_r) V_r^T."""
    w = layer.weight.detach().double()  # type: ignore[operator]
    u, s, vh = torch.linalg.svd(w.flatten(1), full_matrices=False)
    left, right = (u[:, :rank] * s[:rank]).float(), vh[:rank].float()
    bias = layer.bias is not None
    first: nn.Module
    second: nn.Linear | nn.Conv2d
    if isinstance(layer, nn.Linear):
        first = nn.Linear(layer.in_features, rank, bias=False)
        second = nn.Linear(rank, layer.out_features, bias=bias)
        first.weight.data, second.weight.data = right, left
    else:
        assert isinstance(layer, nn.Conv2d)
        # The k x k conv keeps the layer's geometry; only its output channels shrink to rank.
        first = nn.Conv2d(
            layer.in_channels, rank, layer.kernel_size,  # type: ignore[arg-type]
            stride=layer.stride, padding=layer.padding,  # type: ignore[arg-type]
            dilation=layer.dilation, padding_mode=layer.padding_mode,  # type: ignore[arg-type]
            bias=False,
        )  # fmt: skip
        first.weight.data = right.reshape(rank, *layer.weight.shape[1:])
        second = nn.Conv2d(rank, layer.out_channels, 1, bias=bias)
        second.weight.data = left.reshape(layer.out_channels, rank, 1, 1)
    if bias:
        assert second.bias is not None and isinstance(layer.bias, torch.Tensor)
        second.bias.data = layer.bias.detach().clone()
    return nn.Sequential(first, second)


class PlainSvdPeer:
    stage: ClassVar[Stage] = Stage.TORCH

    def check(self, config: PlainSvdPeerConfig, target: Any) -> None:
        return None

    def apply(
        self, config: PlainSvdPeerConfig, state: ModelState, ctx: StepContext
    ) -> dict[str, Any]:
        model = state.module
        before = sum(p.numel() for p in model.parameters())
        for name, rank in config.ranks.items():
            parent, _, attr = name.rpartition(".")
            owner = model.get_submodule(parent) if parent else model
            setattr(owner, attr, _svd_layer(model.get_submodule(name), rank))
        after = sum(p.numel() for p in model.parameters())
        return {
            "peer": SVD_PEER,
            "ranks": dict(config.ranks),
            "rank_matched_to_tucker2_parameters": list(config.matched),
            "parameters_before": before,
            "parameters_after": after,
        }


def _svd_rank(layer: dict[str, Any]) -> int:
    """Our rank where our step used an SVD; for Tucker-2, the SVD rank within its parameters."""
    if layer["kind"] != "tucker2":
        return int(layer["rank"])
    old, ours = layer["parameters"]
    # A channel SVD of an out x inner weight costs rank * (inner + out) parameters.
    out = max(layer["full_rank"][0], 1)
    inner = old // out
    return max(1, ours // (inner + out))


def peer_first_step(ours: StepReport) -> StepConfig:
    """The peer's replacement for our first step, from what that step reported."""
    details = ours.details
    if ours.technique == "structured_pruning":
        skipped = details.get("layers_not_pruned", {})
        ignored = tuple(n for n, why in skipped.items() if why == OUTPUT_LAYER)
        return MagnitudePeerConfig(amount=details["amount"], ignored=ignored)
    if ours.technique == "low_rank":
        layers = details["factorized"]
        ranks = {n: _svd_rank(d) for n, d in layers.items()}
        matched = tuple(n for n, d in layers.items() if d["kind"] == "tucker2")
        return PlainSvdPeerConfig(ranks=ranks, matched=matched)
    raise ValueError(f"no peer for {ours.technique!r}")


PEER_GOAL = "the peer of the row above: same model, data, healing (if any) and measurement"
SHORT = {
    "bench_peer_tp_magnitude": "torch-pruning MagnitudePruner",
    "bench_peer_plain_svd": "plain truncated SVD",
}


def register_peers() -> None:
    """Put the peers in the engine's registry, when a bench run builds a peer recipe. Not at
    import: a process that only imports bench (the test suite) keeps the public registry."""
    register("bench_peer_tp_magnitude")(MagnitudePeer)
    register("bench_peer_plain_svd")(PlainSvdPeer)


def peer_recipe(steps: list[dict[str, Any]], ours: list[StepReport]) -> Recipe:
    """Our recipe with its first step replaced by the peer's; the rest (healing) unchanged.

    Built without the recipe's validation, which knows only the public techniques; the steps
    after the first are validated one by one as the public recipe would.
    """
    register_peers()
    first = peer_first_step(ours[0])
    rest = [TypeAdapter(TechniqueConfig).validate_python(s) for s in steps[1:]]
    # The peer's config is no public technique, hence outside the recipe's step type.
    return Recipe.model_construct(steps=[first, *rest])  # type: ignore[list-item]


def peer_name(ours: str, step: StepReport) -> str:
    """The row name says it is the peer, of which row, and which peer."""
    return f"PEER of {ours}: {SHORT[step.technique]}"


def peer_says(step: StepReport) -> str:
    """What the peer's step did, from its report: settings taken from our row's run."""
    d = step.details
    if step.technique == "bench_peer_tp_magnitude":
        ignored = ", ".join(d["ignored_layers"]) or "none"
        return f"{d['peer']}: pruning ratio {d['amount']}, ignored layers {ignored}"
    ranks = ", ".join(f"{n} {r}" for n, r in d["ranks"].items())
    matched = ", ".join(d["rank_matched_to_tucker2_parameters"]) or "none"
    return (
        f"{d['peer']}, per layer: {ranks}; where ours used Tucker-2 ({matched}), the SVD rank "
        "within the parameters of ours"
    )


def versus(metrics: list[tuple[str, str, str, float, float, bool]]) -> str:
    """Our row against its peer: ``(name, ours shown, peer shown, ours, peer, higher is
    better)`` per metric. A loss is counted only where the shown figures differ, so a tie at
    the page's precision is a tie."""
    shown = ", ".join(f"{n} {a} vs {b}" for n, a, b, *_ in metrics)
    lost = [
        n
        for n, a, b, ours, peer, higher in metrics
        if a != b and (ours < peer if higher else ours > peer)
    ]
    text = f"against the peer (ours vs peer): {shown}"
    return text + (f"; {LOSES} {', '.join(lost)}" if lost else "")


def add_peer(
    name: str,
    steps: list[dict[str, Any]],
    ours: CompressionReport,
    run: Callable[[Recipe, str], CompressionResult],
    models: dict[str, Path],
    reports: dict[str, CompressionReport],
) -> list[Row]:
    """Run our row's peer (``run(recipe, folder suffix)``); its artifact joins ``models`` and its
    report ``reports``, to be measured in the same rounds as ours. A peer that fails becomes a
    failed row of its own, and our row is still measured."""

    def go() -> list[Row]:
        done = run(peer_recipe(steps, ours.steps), "-peer")
        models["peer"] = done.artifact_dir / "model.onnx"
        reports["peer"] = done.compression_report
        return []

    return guarded(f"PEER of {name}", PEER_GOAL, go)
