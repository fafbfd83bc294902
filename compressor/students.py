"""Deriving a smaller student from a teacher, initialised from the teacher's own weights.

Transformers keep a subset of their layers (DistilBERT keeps every other one); plain
``nn.Sequential`` MLPs and CNNs keep the strongest fraction of each hidden layer's units.
Any other graph (residual nets, torchvision/timm networks, onnx2torch modules) is narrowed
by DepGraph channel pruning on example inputs, which keeps residual adds, BatchNorms and
flatten-into-linear heads consistent and the output layers whole.
The teacher is never modified: students are built from a deep copy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from compressor.errors import UnsupportedModelError


@dataclass
class Student:
    module: nn.Module
    # (student hidden-state index, teacher hidden-state index) pairs for hidden matching.
    layer_map: list[tuple[int, int]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def _layer_list(model: nn.Module, count: int) -> tuple[str, nn.ModuleList]:
    # The transformer's blocks are the ModuleList as long as config.num_hidden_layers
    # (encoder.layer for BERT, transformer.layer for DistilBERT, layers for Llama-likes).
    found = [
        (name, mod)
        for name, mod in model.named_modules()
        if isinstance(mod, nn.ModuleList) and len(mod) == count
    ]
    if len(found) != 1:
        raise UnsupportedModelError(
            f"cannot tell which module list holds the {count} transformer layers "
            f"(found {len(found)} candidates); layer dropping supports BERT-like models"
        )
    return found[0]


def pick_layers(total: int, *, num_layers: int | None, keep_every: int | None) -> list[int]:
    if num_layers is None and keep_every is None:
        # Default: half the layers, evenly spaced with the last kept. On all-MiniLM-L6-v2 this
        # starts at 0.69 embedding cosine to the teacher, DistilBERT's 0, 2, 4 at 0.41.
        num_layers = (total + 1) // 2
    if num_layers is not None:
        if not 1 <= num_layers < total:
            raise UnsupportedModelError(
                f"num_layers must be between 1 and {total - 1} for a {total}-layer model"
            )
        if num_layers == 1:
            return [total - 1]
        # Evenly spaced, first and last included: the last layer shapes the output space the
        # teacher's users rely on, the first carries the embeddings' adaptation.
        return sorted({round(i * (total - 1) / (num_layers - 1)) for i in range(num_layers)})
    step = keep_every or 2  # only reached with keep_every set
    kept = list(range(0, total, step))
    if len(kept) >= total:
        raise UnsupportedModelError("keep_every must be at least 2 to drop layers")
    return kept


def derive_transformer_student(
    teacher: nn.Module, *, num_layers: int | None, keep_every: int | None
) -> Student:
    config = teacher.config
    total = int(getattr(config, "num_hidden_layers", 0) or 0)
    if total < 2:
        raise UnsupportedModelError(
            "the model's config has no num_hidden_layers >= 2: no layers to drop"
        )
    student: Any = copy.deepcopy(teacher)
    name, layers = _layer_list(student, total)
    kept = pick_layers(total, num_layers=num_layers, keep_every=keep_every)
    new_layers = nn.ModuleList([layers[i] for i in kept])
    for new_index, layer in enumerate(new_layers):
        # Attention modules index caches by layer_idx; it must follow the new numbering.
        for mod in layer.modules():
            if isinstance(getattr(mod, "layer_idx", None), int):
                mod.layer_idx = new_index  # type: ignore[assignment]
    parent_name, _, attr = name.rpartition(".")
    parent = student.get_submodule(parent_name) if parent_name else student
    setattr(parent, attr, new_layers)
    student.config.num_hidden_layers = len(kept)
    layer_types = getattr(student.config, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) == total:
        student.config.layer_types = [layer_types[i] for i in kept]
    # hidden_states[0] is the embedding output, hidden_states[i + 1] the output of layer i.
    layer_map = [(0, 0)] + [(j + 1, i + 1) for j, i in enumerate(kept)]
    return Student(
        student,
        layer_map,
        {"kind": "layer_drop", "teacher_layers": total, "kept_layers": kept},
    )


_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)
_PASSTHROUGH = (
    nn.ReLU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.LeakyReLU,
    nn.Dropout,
    nn.Dropout2d,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
)


def _flat_layers(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    if not isinstance(module, nn.Sequential):
        raise UnsupportedModelError(
            "a width multiplier needs an nn.Sequential of Linear/Conv/activation/pooling layers",
            layer=prefix or None,
        )
    flat: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        full = f"{prefix}.{name}" if prefix else name
        if isinstance(child, nn.Sequential):
            flat.extend(_flat_layers(child, full))
        elif isinstance(child, _WEIGHTED + _NORMS + _PASSTHROUGH):
            flat.append((full, child))
        else:
            raise UnsupportedModelError(
                f"{type(child).__name__} is not supported by the width multiplier", layer=full
            )
    return flat


def _strongest(weight: torch.Tensor, keep: int) -> torch.Tensor:
    # Units whose incoming weights have the largest norm carry most of the signal; starting
    # the student from them converges much faster than a random initialisation.
    norms = weight.detach().flatten(1).norm(dim=1)
    return norms.topk(keep).indices.sort().values


def derive_width_student(
    teacher: nn.Module, *, width: float, inputs: tuple[torch.Tensor, ...] | None = None
) -> Student:
    """Keep ``width`` of each hidden layer's units. A plain ``nn.Sequential`` is sliced
    layer by layer (exact: the student's units are the teacher's strongest ones); any other
    graph goes through DepGraph, which needs ``inputs`` to trace the channel couplings."""
    try:
        layers = _flat_layers(teacher)
    except UnsupportedModelError as exc:
        if inputs is None:
            raise
        try:
            return _graph_width_student(teacher, width=width, inputs=inputs, why=str(exc))
        except UnsupportedModelError:
            if isinstance(teacher, nn.Sequential):
                raise exc from None  # the chain's own problem names the layer; keep it
            raise
    return _sequential_width_student(layers, width=width)


def _graph_width_student(
    teacher: nn.Module, *, width: float, inputs: tuple[torch.Tensor, ...], why: str
) -> Student:
    from compressor.techniques.pruning.depgraph import prune_channels

    student = copy.deepcopy(teacher)
    # Same importance as the Sequential path (L2 norm of what a channel's producers write),
    # so the student starts from the teacher's strongest channels.
    pruned = prune_channels(student, inputs, amount=1.0 - width, p=2)
    if not pruned["units"]:
        raise UnsupportedModelError(
            "no channel of this model could be narrowed: every layer is coupled to its output"
        )
    units = {name: [u["before"], u["after"]] for name, u in pruned["units"].items()}
    details = {
        "kind": "width",
        "method": "depgraph",
        "width": width,
        "units": units,
        "layers_not_pruned": pruned["layers_not_pruned"],
        "why_not_sliced": why,
    }
    return Student(student, [], details)


def _sequential_width_student(layers: list[tuple[str, nn.Module]], *, width: float) -> Student:
    weighted = [i for i, (_, m) in enumerate(layers) if isinstance(m, _WEIGHTED)]
    if len(weighted) < 2:
        raise UnsupportedModelError("a width multiplier needs at least two Linear/Conv layers")
    new: list[nn.Module] = [copy.deepcopy(m) for _, m in layers]
    kept: torch.Tensor | None = None  # the previous weighted layer's kept output units
    units = 0  # how many output units that layer had in the teacher
    widths: dict[str, list[int]] = {}
    for pos, (name, layer) in enumerate(layers):
        if kept is not None and isinstance(layer, _NORMS):
            new[pos] = _slice_norm(layer, kept, units, name)
        if kept is not None and isinstance(layer, nn.Unflatten):
            raise UnsupportedModelError("cannot narrow units that are reshaped", layer=name)
        if not isinstance(layer, _WEIGHTED):
            continue
        w = layer.weight.detach()
        in_idx = _input_indices(kept, units, int(w.shape[1]), name)
        out_units = int(w.shape[0])
        if pos == weighted[-1]:
            out_idx = torch.arange(out_units)  # the output layer keeps every class/feature
        else:
            out_idx = _strongest(w, max(1, round(out_units * width)))
        new[pos] = _sliced_copy(layer, out_idx, in_idx, name)
        widths[name] = [out_units, len(out_idx)]
        kept, units = out_idx, out_units
    return Student(nn.Sequential(*new), [], {"kind": "width", "width": width, "units": widths})


def _input_indices(
    kept: torch.Tensor | None, units: int, in_features: int, name: str
) -> torch.Tensor:
    if kept is None:
        return torch.arange(in_features)
    if in_features == units:
        return kept
    if in_features % units:
        raise UnsupportedModelError(
            f"{in_features} inputs do not follow from the previous layer's {units} outputs",
            layer=name,
        )
    # A Linear after Flatten of conv channels: each channel owns a contiguous block of
    # in_features / channels inputs (channel-major flattening).
    per = in_features // units
    return (kept[:, None] * per + torch.arange(per)[None, :]).flatten()


def _sliced_copy(layer: Any, out_idx: torch.Tensor, in_idx: torch.Tensor, name: str) -> nn.Module:
    w = layer.weight.detach()
    weight = w[out_idx][:, in_idx].clone()
    bias = layer.bias.detach()[out_idx].clone() if layer.bias is not None else None
    if isinstance(layer, nn.Linear):
        new: Any = nn.Linear(len(in_idx), len(out_idx), bias=bias is not None)
    else:
        assert isinstance(layer, nn.Conv1d | nn.Conv2d)
        if layer.groups != 1:
            raise UnsupportedModelError("grouped convolutions cannot be narrowed", layer=name)
        cls: Any = type(layer)
        new = cls(
            len(in_idx),
            len(out_idx),
            layer.kernel_size,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            bias=bias is not None,
            padding_mode=layer.padding_mode,
        )
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new


def _slice_norm(layer: nn.Module, kept: torch.Tensor, units: int, name: str) -> nn.Module:
    size = layer.num_features if isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d) else None
    if isinstance(layer, nn.LayerNorm):
        size = layer.normalized_shape[0] if len(layer.normalized_shape) == 1 else None
    if size != units:
        raise UnsupportedModelError("this normalisation layer cannot be narrowed", layer=name)
    new = copy.deepcopy(layer)
    with torch.no_grad():
        for attr in ("weight", "bias", "running_mean", "running_var"):
            value = getattr(layer, attr, None)
            if isinstance(value, torch.Tensor):
                sliced = value.detach()[kept].clone()
                if isinstance(value, nn.Parameter):
                    setattr(new, attr, nn.Parameter(sliced))
                else:
                    setattr(new, attr, sliced)
    if isinstance(new, nn.BatchNorm1d | nn.BatchNorm2d):
        new.num_features = len(kept)
    elif isinstance(new, nn.LayerNorm):
        new.normalized_shape = (len(kept),)
    return new


def derive_student(
    teacher: nn.Module,
    *,
    num_layers: int | None = None,
    keep_every: int | None = None,
    width: float = 0.5,
    inputs: tuple[torch.Tensor, ...] | None = None,
) -> Student:
    """A smaller copy of ``teacher``: fewer transformer layers, or narrower hidden layers.
    ``inputs`` (example model inputs) let any graph, not only an ``nn.Sequential``, be narrowed."""
    from compressor.training import is_hf_model

    if is_hf_model(teacher):
        return derive_transformer_student(teacher, num_layers=num_layers, keep_every=keep_every)
    return derive_width_student(teacher, width=width, inputs=inputs)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
