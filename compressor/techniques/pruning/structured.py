"""Structured pruning: physically remove neurons, channels and attention heads.

Unlike masking, the layers really shrink: a removed output channel is cut from its layer
(and from any BatchNorm after it) and the matching input columns are cut from the layer
that consumes it, so the saved model has fewer parameters and runs fewer FLOPs.

Two paths:
- BERT-like Hugging Face encoders: FFN neurons (intermediate.dense rows + output.dense
  columns) and attention heads (query/key/value rows + attention.output.dense columns).
  The same number of neurons goes from every layer so that ``config.intermediate_size``
  still describes the model and ``AutoModel.from_pretrained`` reloads it. Head counts cannot
  be described in a transformers 5 config (it has no ``pruned_heads`` any more), so head
  pruning is offered for onnxruntime targets only.
- Any other torch module (zoo chains, torchvision/timm networks, onnx2torch graphs): channels
  are removed group by group with torch-pruning's dependency graph (``depgraph.py``), which
  keeps residual adds, BatchNorms, concats, grouped/depthwise convs and flatten-into-linear
  heads consistent. Layers whose outputs are the model's outputs keep every channel.

``dead_only`` removes just the units that unstructured pruning left dead, so the outputs do
not change. In plain chains: units nothing reads (all-zero consumer weights), and Linear units
that read nothing (all-zero weight row), whose constant activation is folded into the
consumer's bias. Deep Compression's sparse MLPs carry many of both, and their biases are then
the largest thing left in a compressed artifact. In other graphs: the channels nothing reads.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from compressor.errors import InvalidRecipeError, UnsupportedModelError
from compressor.target import Target
from compressor.techniques.base import ModelState, Stage, StepConfig, StepContext, register

# compressor.techniques.pruning.depgraph is imported where it is used: torch-pruning pulls in timm,
# torchvision and torch._dynamo, seconds of CPU that every job process would pay otherwise.


class StructuredPruningConfig(StepConfig):
    technique: Literal["structured_pruning"] = "structured_pruning"
    amount: float = Field(0.25, gt=0.0, lt=1.0, description="Fraction of units removed.")
    importance: Literal["l1", "l2"] = "l2"
    ffn: bool = Field(True, description="Transformers: remove FFN neurons.")
    heads: bool = Field(
        False, description="Transformers: remove attention heads (onnxruntime targets only)."
    )
    dead_only: bool = Field(
        False,
        description="Plain chains: remove only units left dead by earlier pruning (no "
        "outgoing weights, or no incoming weights with the constant folded into the next "
        "bias); exact, and 'amount' is not used.",
    )


_PASS_THROUGH = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Dropout,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Identity,
)


def _norm(weight: torch.Tensor, dims: tuple[int, ...], kind: str) -> torch.Tensor:
    return weight.abs().sum(dim=dims) if kind == "l1" else weight.pow(2).sum(dim=dims).sqrt()


def _keep(scores: torch.Tensor, amount: float) -> torch.Tensor:
    count = scores.numel()
    keep = max(1, count - int(round(amount * count)))
    return torch.sort(torch.topk(scores, keep).indices).values


def _slice_layer(
    layer: nn.Linear | nn.Conv2d, *, rows: torch.Tensor | None, cols: torch.Tensor | None
) -> None:
    """Keep output units ``rows`` and input units ``cols`` of a Linear or Conv2d, in place."""
    out_attr, in_attr = (
        ("out_features", "in_features")
        if isinstance(layer, nn.Linear)
        else ("out_channels", "in_channels")
    )
    weight = layer.weight.data
    if rows is not None:
        weight = weight[rows]
        if layer.bias is not None:
            layer.bias = nn.Parameter(layer.bias.data[rows].clone())
        setattr(layer, out_attr, int(rows.numel()))
    if cols is not None:
        weight = weight[:, cols]
        setattr(layer, in_attr, int(cols.numel()))
    layer.weight = nn.Parameter(weight.clone())


# ---------------------------------------------------------------- transformers (BERT-like)


def _bert_layers(model: nn.Module) -> list[nn.Module]:
    found = []
    for module in model.modules():
        inter = getattr(module, "intermediate", None)
        out = getattr(module, "output", None)
        if isinstance(getattr(inter, "dense", None), nn.Linear) and isinstance(
            getattr(out, "dense", None), nn.Linear
        ):
            found.append(module)
    return found


def _prune_ffn(layers: list[nn.Module], config: StructuredPruningConfig) -> dict[str, Any]:
    report = {}
    size = None
    for index, layer in enumerate(layers):
        up: nn.Linear = layer.intermediate.dense  # type: ignore[union-attr,assignment]
        down: nn.Linear = layer.output.dense  # type: ignore[union-attr,assignment]
        # A neuron matters by what it reads times what it writes.
        scores = _norm(up.weight.data, (1,), config.importance) * _norm(
            down.weight.data, (0,), config.importance
        )
        keep = _keep(scores, config.amount)
        before = up.out_features
        _slice_layer(up, rows=keep, cols=None)
        _slice_layer(down, rows=None, cols=keep)
        size = up.out_features
        report[f"layer.{index}.ffn"] = {"before": before, "after": size}
    return {"ffn_neurons": report, "intermediate_size": size}


def _prune_heads(layers: list[nn.Module], config: StructuredPruningConfig) -> dict[str, Any]:
    report = {}
    for index, layer in enumerate(layers):
        attention = getattr(layer, "attention", None)
        self_attn = getattr(attention, "self", None)
        out = getattr(getattr(attention, "output", None), "dense", None)
        if self_attn is None or not isinstance(out, nn.Linear):
            raise UnsupportedModelError(
                "head pruning needs BERT-style attention (attention.self.query/key/value and "
                "attention.output.dense)",
                layer=f"layer.{index}",
            )
        head_size = int(self_attn.attention_head_size)
        q, k, v = self_attn.query, self_attn.key, self_attn.value
        heads = q.out_features // head_size

        def per_head(w: torch.Tensor, head_size: int = head_size) -> torch.Tensor:
            return w.reshape(-1, head_size, w.shape[-1])

        scores = (
            _norm(per_head(q.weight.data), (1, 2), config.importance)
            + _norm(per_head(k.weight.data), (1, 2), config.importance)
            + _norm(per_head(v.weight.data), (1, 2), config.importance)
            + _norm(per_head(out.weight.data.t().contiguous()), (1, 2), config.importance)
        )
        kept_heads = _keep(scores, config.amount)
        rows = (kept_heads[:, None] * head_size + torch.arange(head_size)[None, :]).flatten()
        for lin in (q, k, v):
            _slice_layer(lin, rows=rows, cols=None)
        _slice_layer(out, rows=None, cols=rows)
        # The forward infers the head count from the projection width; these keep the
        # module's own bookkeeping consistent with it.
        self_attn.num_attention_heads = int(kept_heads.numel())
        self_attn.all_head_size = int(rows.numel())
        report[f"layer.{index}.attention"] = {
            "heads_before": heads,
            "heads_after": int(kept_heads.numel()),
            "removed": sorted(set(range(heads)) - set(kept_heads.tolist())),
        }
    return {"attention_heads": report}


# ---------------------------------------------------------------- plain torch chains


def _leaves(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _leaves(child)]
    return [module]


def _keep_units(
    producer: nn.Linear | nn.Conv2d,
    between: list[nn.Module],
    consumer: nn.Linear | nn.Conv2d,
    keep: torch.Tensor,
    *,
    units: int,
) -> None:
    """Keep only units ``keep`` of ``producer``, in its BatchNorms and in what reads them."""
    _slice_layer(producer, rows=keep, cols=None)
    for m in between:
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            _slice_batchnorm(m, keep)
    if isinstance(consumer, nn.Conv2d):
        _slice_layer(consumer, rows=None, cols=keep)
        return
    # After Flatten, each channel owns a contiguous run of H*W columns.
    per_channel = consumer.in_features // units
    cols = (keep[:, None] * per_channel + torch.arange(per_channel)[None, :]).flatten()
    _slice_layer(consumer, rows=None, cols=cols)


# Elementwise modules map a constant unit to a constant, so it can be folded into a bias.
_ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Dropout,
    nn.Identity,
    nn.BatchNorm1d,
)


def _dead_units(
    producer: nn.Linear | nn.Conv2d,
    consumer: nn.Linear | nn.Conv2d,
    between: list[nn.Module],
    per_channel: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Which units to drop, and (Linear pairs) each unit's constant output for folding."""
    out_w = producer.weight.data
    units = int(out_w.shape[0])
    in_w = consumer.weight.data
    if isinstance(consumer, nn.Linear):
        # After Flatten, each channel owns a contiguous run of per_channel columns.
        reads = in_w.reshape(in_w.shape[0], units, per_channel).ne(0).any(dim=2).any(dim=0)
    else:
        reads = in_w.ne(0).flatten(2).any(dim=2).any(dim=0)
    unread = ~reads
    constant = None
    if (
        isinstance(producer, nn.Linear)
        and isinstance(consumer, nn.Linear)
        and per_channel == 1
        and all(isinstance(m, _ELEMENTWISE) for m in between)
    ):
        bias = producer.bias.data if producer.bias is not None else torch.zeros(units)
        value = bias[None, :].clone()
        for m in between:
            # Evaluation behaviour (BatchNorm running stats, no dropout) is what gets saved.
            was_training = m.training
            value = m.eval()(value)
            m.train(was_training)
        constant = value[0]
        deaf = ~out_w.ne(0).any(dim=1)
        return unread | deaf, constant
    return unread, constant


def _remove_dead_in_chain(model: nn.Sequential) -> dict[str, Any]:
    leaves = _leaves(model)
    names = {id(m): n for n, m in model.named_modules()}
    weighted = [i for i, m in enumerate(leaves) if isinstance(m, nn.Linear | nn.Conv2d)]
    report: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for producer_i, consumer_i in zip(weighted, weighted[1:], strict=False):
        producer, consumer = leaves[producer_i], leaves[consumer_i]
        assert isinstance(producer, nn.Linear | nn.Conv2d)
        assert isinstance(consumer, nn.Linear | nn.Conv2d)
        between = leaves[producer_i + 1 : consumer_i]
        name = names.get(id(producer), str(producer_i))
        allowed = _PASS_THROUGH + (nn.BatchNorm1d, nn.BatchNorm2d, nn.Flatten)
        if any(not isinstance(m, allowed) for m in between) or any(
            isinstance(m, nn.Conv2d) and m.groups != 1 for m in (producer, consumer)
        ):
            skipped[name] = "not a plain producer/consumer pair"
            continue
        units = int(producer.weight.shape[0])
        per_channel = consumer.in_features // units if isinstance(consumer, nn.Linear) else 1
        dead, constant = _dead_units(producer, consumer, between, per_channel)
        keep = (~dead).nonzero().flatten()
        if keep.numel() == 0:
            # A layer with no live unit leaves the model constant; keep one so it still runs.
            keep = torch.zeros(1, dtype=torch.long)
        gone = sorted(set(range(units)) - set(keep.tolist()))
        if not gone:
            report[name] = {"before": units, "after": units, "folded_into_bias": 0}
            continue
        folded = 0
        if constant is not None:
            assert isinstance(consumer, nn.Linear)
            idx = torch.tensor(gone, dtype=torch.long)
            shift = consumer.weight.data[:, idx] @ constant[idx]
            # Units nothing reads go without a trace; the others leave their constant behind.
            read = consumer.weight.data[:, idx].ne(0).any(dim=0)
            folded = int(((constant[idx] != 0) & read).sum())
            if folded:
                if consumer.bias is None:
                    consumer.bias = nn.Parameter(torch.zeros(consumer.out_features))
                consumer.bias.data += shift
        _keep_units(producer, between, consumer, keep, units=units)
        report[name] = {"before": units, "after": int(keep.numel()), "folded_into_bias": folded}
    return {"units": report, "layers_not_pruned": skipped}


def _slice_batchnorm(bn: nn.BatchNorm1d | nn.BatchNorm2d, keep: torch.Tensor) -> None:
    if bn.affine:
        bn.weight = nn.Parameter(bn.weight.data[keep].clone())
        bn.bias = nn.Parameter(bn.bias.data[keep].clone())
    if bn.running_mean is not None and bn.running_var is not None:
        bn.running_mean = bn.running_mean[keep].clone()
        bn.running_var = bn.running_var[keep].clone()
    bn.num_features = int(keep.numel())


@register("structured_pruning")
class StructuredPruningHandler:
    stage: ClassVar[Stage] = Stage.TORCH

    def check(self, config: StructuredPruningConfig, target: Target) -> None:
        if config.heads and target.runtime == "torch":
            raise InvalidRecipeError(
                "attention-head pruning leaves layers with fewer heads than config.json "
                "declares, and transformers 5 has no setting for that, so the saved folder "
                "would not reload: use runtime 'onnxruntime', or heads=false"
            )
        if not config.ffn and not config.heads and not config.dead_only:
            raise InvalidRecipeError(
                "structured_pruning with ffn=false and heads=false does nothing"
            )

    def apply(
        self, config: StructuredPruningConfig, state: ModelState, ctx: StepContext
    ) -> dict[str, Any]:
        model = state.module
        before = sum(p.numel() for p in model.parameters())
        layers = _bert_layers(model)
        if config.dead_only:
            details = _remove_dead(model, ctx)
        elif layers:
            details = {"family": "transformer encoder"}
            with torch.no_grad():
                if config.ffn:
                    details.update(_prune_ffn(layers, config))
                    model.config.intermediate_size = details["intermediate_size"]
                if config.heads:
                    details.update(_prune_heads(layers, config))
        else:
            from compressor.techniques.pruning.depgraph import example_inputs, prune_channels

            _check_prunable(model)
            details = {"family": "dependency graph"}
            details.update(
                prune_channels(
                    model,
                    example_inputs(ctx.calibration),
                    amount=config.amount,
                    p=1 if config.importance == "l1" else 2,
                )
            )
        after = sum(p.numel() for p in model.parameters())
        if config.dead_only:
            return {"parameters_before": before, "parameters_after": after, **details}
        return {
            "amount": config.amount,
            "importance": config.importance,
            "parameters_before": before,
            "parameters_after": after,
            **details,
        }


def _check_prunable(model: nn.Module) -> None:
    from compressor.techniques.pruning.depgraph import weighted_layers

    count = len(weighted_layers(model))
    if count == 0:
        raise UnsupportedModelError(
            f"structured pruning removes channels of Linear and Conv layers; it supports "
            f"BERT-like encoders and graphs of such layers, not {type(model).__name__}"
        )
    if count < 2:
        raise UnsupportedModelError(
            "structured pruning needs at least two Linear/Conv layers: the last one gives the "
            "model's outputs and cannot lose any"
        )


def _remove_dead(model: nn.Module, ctx: StepContext) -> dict[str, Any]:
    from compressor.techniques.pruning.depgraph import (
        dead_channels,
        example_inputs,
        weighted_layers,
    )

    # Plain chains also fold constant units into the next bias; other graphs lose the channels
    # nothing reads, which DepGraph finds through adds, concats and BatchNorms.
    if isinstance(model, nn.Sequential):
        with torch.no_grad():
            return {
                "family": "sequential",
                "mode": "dead units only",
                **_remove_dead_in_chain(model),
            }
    if not weighted_layers(model):
        raise UnsupportedModelError(
            f"dead-unit removal needs Linear or Conv layers, found none in {type(model).__name__}"
        )
    return {
        "family": "dependency graph",
        "mode": "dead units only (channels nothing reads)",
        **dead_channels(model, example_inputs(ctx.calibration)),
    }
