"""The weight matrices of a decoder layer, read and written in one layout whatever the module."""

from __future__ import annotations

import torch


def quantizable(layer: torch.nn.Module) -> dict[str, torch.nn.Module]:
    from transformers.pytorch_utils import Conv1D

    return {n: m for n, m in layer.named_modules() if isinstance(m, torch.nn.Linear | Conv1D) and n}


def linear_weight(module: torch.nn.Module) -> torch.Tensor:
    """(out, in) whatever the module: GPT-2's Conv1D stores (in, out)."""
    w: torch.Tensor = module.weight.data  # type: ignore[union-attr,assignment]
    return w if isinstance(module, torch.nn.Linear) else w.t()


def set_weight(module: torch.nn.Module, weight: torch.Tensor) -> None:
    module.weight.data = weight if isinstance(module, torch.nn.Linear) else weight.t().contiguous()
