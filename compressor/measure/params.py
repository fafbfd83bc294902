"""Parameter counts of a torch module as the report states them."""

from __future__ import annotations

from typing import Any

import torch


def torch_param_stats(module: torch.nn.Module) -> dict[str, Any]:
    params = list(module.parameters())
    dtypes: dict[str, int] = {}
    for p in params:
        key = str(p.dtype).removeprefix("torch.")
        dtypes[key] = dtypes.get(key, 0) + p.numel()
    return {
        "parameters": sum(p.numel() for p in params),
        "nonzero_parameters": sum(int(torch.count_nonzero(p)) for p in params),
        "dtypes": dtypes,
    }
