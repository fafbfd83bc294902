"""Half-precision casts of a torch module (fp16 / bf16), saved as Hugging Face safetensors."""

from __future__ import annotations

from typing import Any

import torch

# Modules whose parameters we report as normalisation: torch's CPU and CUDA kernels for
# these accumulate in fp32 (opmath) even on half inputs, and HF attention upcasts softmax.
_NORMS = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)


def cast_module(module: torch.nn.Module, *, dtype: torch.dtype) -> dict[str, Any]:
    norms = [name for name, m in module.named_modules() if isinstance(m, _NORMS)]
    before = sum(p.numel() for p in module.parameters() if p.dtype == torch.float32)
    module.to(dtype)
    config = getattr(module, "config", None)
    if config is not None:
        # save_pretrained records this; from_pretrained(dtype="auto") then restores it.
        config.dtype = dtype
    name = str(dtype).removeprefix("torch.")
    return {
        "dtype": name,
        "parameters_cast": before,
        "normalisation_layers": len(norms),
        "numerically_sensitive_ops": (
            "LayerNorm/BatchNorm statistics and softmax are computed in float32 inside the "
            f"kernels; their parameters are stored in {name} so the saved folder reloads "
            "with one dtype"
        ),
    }
