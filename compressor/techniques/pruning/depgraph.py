"""Channel removal on any torch graph, with torch-pruning's dependency graph (DepGraph).

A channel cannot be cut from one layer alone: a residual add needs both branches to lose the
same channels, a BatchNorm and a depthwise convolution follow their producer, a concat shifts
the indices of what follows it, and a Linear after a flatten reads every channel as a run of
columns. DepGraph traces the model once on example inputs and groups every tensor slice that
has to go together, so the same code serves a zoo chain, a torchvision ResNet, a MobileNet and
an onnx2torch module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

from compressor.errors import UnsupportedModelError
from compressor.inputs import LABELS, EvalInputs

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_OUT_FNS = (tp.prune_conv_out_channels, tp.prune_linear_out_channels)
_IN_FNS = (tp.prune_conv_in_channels, tp.prune_linear_in_channels)


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _WEIGHTED)]


def example_inputs(calibration: EvalInputs, rows: int = 2) -> tuple[torch.Tensor, ...]:
    """The first ``rows`` calibration samples, in the positional order the model is called with."""
    tensors = [v for k, v in calibration.tensors.items() if k != LABELS]
    if not tensors:
        raise UnsupportedModelError(
            "structured pruning traces the model on example inputs to find which channels are "
            "coupled, and this job has none"
        )
    return tuple(torch.from_numpy(np.ascontiguousarray(v[:rows])) for v in tensors)


class ProducerNorm(tp.importance.Importance):
    """L1/L2 norm of what each channel's producers write (every Conv/Linear output row in
    the group); a channel whose producers are all zero scores exactly 0, so cutting the
    lowest scores first removes units that contribute nothing before any that do."""

    def __init__(self, p: int) -> None:
        self.p = p

    @torch.no_grad()
    def __call__(self, group: Any) -> torch.Tensor:
        size = len(group[0].root_idxs)
        score = torch.zeros(size, dtype=torch.float64)
        for item in group.items:
            layer = item.dep.layer
            if item.dep.pruning_fn not in _OUT_FNS or not isinstance(layer, _WEIGHTED):
                continue
            rows = layer.weight.detach()[item.idxs].flatten(1).double().abs().pow(self.p).sum(1)
            score.index_add_(0, torch.tensor(item.root_idxs), rows)
        return score.pow(1.0 / self.p)


def _output_layers(graph: tp.DependencyGraph) -> set[nn.Module]:
    """Conv/Linear layers whose channels reach a model output with no weighted layer between:
    cutting them would change the output's shape."""
    nodes = list(graph.module2node.values())
    pending = [n for n in nodes if not n.outputs]
    seen: set[int] = set()
    found: set[nn.Module] = set()
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node.module, _WEIGHTED):
            found.add(node.module)
            continue
        pending.extend(node.inputs)
    return found


def build_graph(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tp.DependencyGraph:
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            return tp.DependencyGraph().build_dependency(model, example_inputs=inputs)
    except Exception as exc:  # tracing runs the user's graph; any failure is about the model
        raise UnsupportedModelError(
            f"structured pruning could not trace the model's channel dependencies: {exc}"
        ) from exc
    finally:
        model.train(was_training)


def _output_shapes(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[tuple[int, ...]]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(*inputs)
    finally:
        model.train(was_training)
    flat = out if isinstance(out, tuple | list) else [out]
    return [tuple(t.shape) for t in flat if isinstance(t, torch.Tensor)]


def _verify(model: nn.Module, inputs: tuple[torch.Tensor, ...], shapes: list[Any]) -> None:
    """DepGraph can mis-trace a coupling (torch-pruning 1.6 treats a concat read only through a
    flatten as an elementwise op): a model that no longer runs, or runs to other output shapes,
    is refused here rather than delivered."""
    try:
        after = _output_shapes(model, inputs)
    except Exception as exc:  # the pruned graph's own error, whatever its type
        raise UnsupportedModelError(
            f"structured pruning left a model that does not run ({type(exc).__name__}: {exc}); "
            "a coupling between channels was not traced (a concat read through a flatten is "
            "one known case)"
        ) from exc
    if after != shapes:
        raise UnsupportedModelError(
            f"structured pruning changed the model's output shapes from {shapes} to {after}"
        )


def _width(layer: nn.Module) -> int:
    weight = layer.weight
    assert isinstance(weight, torch.Tensor)
    return int(weight.shape[0])


def _widths(layers: Iterable[tuple[str, nn.Module]]) -> dict[str, int]:
    return {n: _width(m) for n, m in layers}


def prune_channels(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], *, amount: float, p: int
) -> dict[str, Any]:
    """Remove ``amount`` of every prunable channel group, in place; what changed, per layer."""
    layers = weighted_layers(model)
    graph = build_graph(model, inputs)
    protected = _output_layers(graph)
    shapes = _output_shapes(model, inputs)
    names = {id(m): n for n, m in layers}
    skipped = {names[id(m)]: "its outputs are the model's outputs" for m in protected}
    before = _widths(layers)
    pruner = tp.pruner.MetaPruner(
        model,
        inputs,
        importance=ProducerNorm(p),
        pruning_ratio=amount,
        ignored_layers=list(protected),
        global_pruning=False,
    )
    groups = 0
    with torch.enable_grad():
        for group in pruner.step(interactive=True):
            group.prune()
            groups += 1
    _verify(model, inputs, shapes)
    after = _widths(layers)
    units = {
        n: {"before": before[n], "after": after[n]}
        for n in before
        if n not in skipped and after[n] != before[n]
    }
    for n in before:
        if n not in skipped and n not in units:
            skipped[n] = "its output channels are coupled to a layer that cannot lose any"
    return {"units": units, "layers_not_pruned": skipped, "channel_groups_pruned": groups}


def dead_channels(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[str, Any]:
    """Remove channels nothing reads: every Conv/Linear input slice that sees the channel is
    all zero. Whatever the producers compute there is multiplied by zero, so no output changes."""
    layers = weighted_layers(model)
    graph = build_graph(model, inputs)
    protected = _output_layers(graph)
    shapes = _output_shapes(model, inputs)
    names = {id(m): n for n, m in layers}
    before = _widths(layers)
    done: set[int] = set()
    for _, layer in layers:
        if layer in protected or id(layer) in done:
            continue
        width = _width(layer)
        group = graph.get_pruning_group(layer, _out_fn(layer), idxs=list(range(width)))
        done.update(id(dep.layer) for dep, _ in group if dep.pruning_fn in _OUT_FNS)
        unread = _unread(group, width)
        if unread is None or not unread.any():
            continue
        dead = unread.nonzero().flatten().tolist()
        if len(dead) == len(unread):
            dead = dead[1:]  # a layer with no live channel leaves the model constant; keep one
        graph.get_pruning_group(layer, _out_fn(layer), idxs=dead).prune()
    _verify(model, inputs, shapes)
    after = _widths(layers)
    units = {
        names[id(m)]: {"before": before[n], "after": after[n]}
        for n, m in layers
        if after[n] != before[n]
    }
    return {"units": units}


def _out_fn(layer: nn.Module) -> Any:
    return (
        tp.prune_linear_out_channels if isinstance(layer, nn.Linear) else tp.prune_conv_out_channels
    )


def _unread(group: Any, width: int) -> torch.Tensor | None:
    """Per channel of the group's root: True where no weighted consumer reads it. None when a
    consumer is something else DepGraph couples (it might read the channel unseen)."""
    reads = torch.zeros(width, dtype=torch.float64)
    consumers = 0
    for item in group.items:
        if item.dep.pruning_fn not in _IN_FNS:
            continue
        layer = item.dep.layer
        if isinstance(layer, nn.Conv2d | nn.Conv1d | nn.Conv3d) and layer.groups != 1:
            return None  # a grouped consumer also fixes its own output channels
        w = layer.weight.detach()
        per_input = w.transpose(0, 1).flatten(1).ne(0).any(dim=1)
        # After a flatten several columns map to one root channel: count, don't overwrite.
        reads.index_add_(0, torch.tensor(item.root_idxs), per_input[item.idxs].double())
        consumers += 1
    return reads.eq(0) if consumers else None
