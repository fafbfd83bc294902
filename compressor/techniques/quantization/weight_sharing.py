"""Weight sharing (Deep Compression, Han et al. 2016): each layer's non-zero weights snap to a
small codebook found by 1-D k-means, so a layer holds at most ``clusters`` distinct values.

The model keeps its format: the weights stay dense floats (or become int8 in a later
quantization step, which maps each shared value to one integer), so every runtime serves it as
before. What shrinks is the download: few distinct values next to pruning's zeros are what the
artifact's entropy coder (xz / deflate, compressor/artifacts.py) packs into a few bits each.
Zeros stay zeros: pruned positions are not moved onto a centroid.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from compressor.errors import UnsupportedModelError
from compressor.target import Target
from compressor.techniques.base import ModelState, Stage, StepConfig, StepContext, register

ITERATIONS = 30


class WeightSharingConfig(StepConfig):
    technique: Literal["weight_sharing"] = "weight_sharing"
    clusters: int = Field(
        16, ge=2, le=256, description="Distinct non-zero values per layer (16 = 4-bit indices)."
    )
    biases: bool = Field(
        True,
        description="Share each layer's bias values too: an int8 graph keeps biases in float32, "
        "which no entropy coder shrinks (about a quarter of a pruned int8 MLP's packed bytes).",
    )
    exclude: tuple[str, ...] = Field((), description="Module-name substrings left as they are.")


def shared_values(values: torch.Tensor, clusters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """1-D k-means: (codebook, index of each value). Centroids start evenly spaced over the
    values' range, the initialisation Deep Compression found best: it keeps centroids on the
    rare large weights, which matter most, where density-based starts would not."""
    flat = values.detach().double().flatten()
    k = min(clusters, int(flat.unique().numel()))
    codebook = torch.linspace(float(flat.min()), float(flat.max()), k, dtype=torch.float64)
    for _ in range(ITERATIONS):
        index = _nearest(flat, codebook)
        sums = torch.zeros_like(codebook).index_add_(0, index, flat)
        counts = torch.bincount(index, minlength=k).to(flat.dtype)
        updated = torch.where(counts > 0, sums / counts.clamp(min=1), codebook)
        if torch.equal(updated, codebook):
            break
        codebook = updated
    return codebook, _nearest(flat, codebook)


def _nearest(flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of each value's nearest centroid. In 1-D, Lloyd's steps keep the codebook sorted,
    so the midpoints between neighbours bound each cluster: O(n log k) time, O(n) memory (a
    distance matrix would need n x k, 34 GB for a 4096x4096 layer at 256 clusters)."""
    return torch.bucketize(flat, (codebook[1:] + codebook[:-1]) / 2)


def _shareable(config: WeightSharingConfig, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    found = {}
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear | torch.nn.Conv1d | torch.nn.Conv2d):
            continue
        if any(s in name for s in config.exclude):
            continue
        found[f"{name}.weight"] = module.weight
        if config.biases and module.bias is not None:
            found[f"{name}.bias"] = module.bias
    return found


def share(tensor: torch.Tensor, clusters: int) -> dict[str, float] | None:
    """Snap ``tensor``'s non-zero values onto their codebook, in place; None if all zero."""
    kept = tensor != 0
    if not bool(kept.any()):
        return None
    before = tensor[kept]
    codebook, index = shared_values(before, clusters)
    after = codebook[index].to(tensor.dtype)
    tensor[kept] = after
    error = float((after - before).norm() / before.norm().clamp(min=1e-12))
    return {"values": int(codebook.numel()), "relative_error": round(error, 5)}


@register("weight_sharing")
class WeightSharingHandler:
    stage: ClassVar[Stage] = Stage.TORCH

    def check(self, config: WeightSharingConfig, target: Target) -> None:
        return None

    def apply(
        self, config: WeightSharingConfig, state: ModelState, ctx: StepContext
    ) -> dict[str, Any]:
        tensors = _shareable(config, state.module)
        if not tensors:
            raise UnsupportedModelError("weight sharing found no Linear or Conv layer")
        per_tensor: dict[str, dict[str, float]] = {}
        with torch.no_grad():
            for n, (name, tensor) in enumerate(tensors.items()):
                found = share(tensor, config.clusters)
                if found is not None:
                    per_tensor[name] = found
                ctx.progress((n + 1) / len(tensors))
        return {
            "clusters": config.clusters,
            "index_bits": max(1, (config.clusters - 1).bit_length()),
            "biases_shared": config.biases,
            "tensors": per_tensor,
        }
