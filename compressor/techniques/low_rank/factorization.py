"""Low-rank factorization: Linear by truncated SVD, Conv2d by channel SVD or Tucker-2.

Each factorized layer becomes a short ``nn.Sequential`` computing the same map with fewer
parameters and multiply-adds; a layer's spectra are computed once (``decompose``) and any
ranks read from them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class Decomposition:
    """A layer's spectra, computed once; ranks for any kept energy are read from them."""

    kind: str
    layer: nn.Module
    spectra: tuple[torch.Tensor, ...]
    full: tuple[int, ...]
    old: int
    cost: Callable[[tuple[int, ...]], int]
    factors: Any
    # The exact share of the weight's energy the factorized form keeps, where the spectra alone
    # do not give it (Tucker-2: the two modes' cuts compound).
    kept: Callable[[tuple[int, ...]], float] | None = None

    def ranks(self, energy: float) -> tuple[int, ...]:
        return tuple(
            min(_rank_for_energy(s, energy), f)
            for s, f in zip(self.spectra, self.full, strict=True)
        )

    def saves(self, energy: float, min_saving: float) -> bool:
        return self.cost(self.ranks(energy)) <= (1.0 - min_saving) * self.old

    def params_at(self, energy: float, min_saving: float) -> int:
        return self.cost(self.ranks(energy)) if self.saves(energy, min_saving) else self.old

    def describe(self, energy: float) -> dict[str, Any]:
        return self.describe_ranks(self.ranks(energy))

    def energy_at(self, ranks: tuple[int, ...]) -> float:
        if self.kept is not None:
            return self.kept(ranks)
        return min(_kept(s, r) for s, r in zip(self.spectra, ranks, strict=True))

    def describe_ranks(self, ranks: tuple[int, ...]) -> dict[str, Any]:
        one = len(ranks) == 1
        described: dict[str, Any] = {
            "kind": self.kind,
            "rank": ranks[0] if one else list(ranks),
            "full_rank": self.full[0] if one else list(self.full),
            "energy_kept": self.energy_at(ranks),
            "parameters": [self.old, self.cost(ranks)],
        }
        if not one:
            modes = [_kept(s, r) for s, r in zip(self.spectra, ranks, strict=True)]
            described["mode_energy_kept"] = modes
        return described


def _rank_for_energy(singular: torch.Tensor, energy: float) -> int:
    power = singular.double() ** 2
    cumulative = torch.cumsum(power, 0) / power.sum().clamp(min=1e-30)
    return int(torch.searchsorted(cumulative, torch.tensor(energy, dtype=cumulative.dtype))) + 1


def _kept(singular: torch.Tensor, rank: int) -> float:
    power = singular.double() ** 2
    return round(float(power[:rank].sum() / power.sum().clamp(min=1e-30)), 4)


def decompose(layer: nn.Module, conv: str) -> Decomposition:
    w = layer.weight.detach().double()  # type: ignore[operator]
    out, inner = w.shape[0], w[0].numel()
    if isinstance(layer, nn.Conv2d) and conv == "tucker2":
        c_in, k2 = w.shape[1], w.shape[2] * w.shape[3]
        u_out, s_out, _ = torch.linalg.svd(w.flatten(1), full_matrices=False)
        u_in, s_in, _ = torch.linalg.svd(w.transpose(0, 1).flatten(1), full_matrices=False)

        def tucker_cost(r: tuple[int, ...]) -> int:
            return c_in * r[1] + r[1] * r[0] * k2 + r[0] * out

        def tucker_kept(r: tuple[int, ...]) -> float:
            core = torch.einsum("oihw,or,is->rshw", w, u_out[:, : r[0]], u_in[:, : r[1]])
            return round(float(core.square().sum() / w.square().sum().clamp(min=1e-30)), 4)

        full = (min(out, c_in * k2), min(c_in, out * k2))
        factors = (u_out, u_in, w)
        return Decomposition(
            "tucker2", layer, (s_out, s_in), full, out * inner, tucker_cost, factors, tucker_kept
        )
    u, s, vh = torch.linalg.svd(w.flatten(1), full_matrices=False)

    def svd_cost(r: tuple[int, ...]) -> int:
        return r[0] * (inner + out)

    kind = "linear_svd" if isinstance(layer, nn.Linear) else "channel_svd"
    return Decomposition(kind, layer, (s,), (min(out, inner),), out * inner, svd_cost, (u, s, vh))


def _split(factors: Any, rank: int) -> tuple[Any, Any]:
    # sqrt(S) on both sides keeps the two factors on the same scale, which healing likes.
    u, s, vh = factors
    root = s[:rank].sqrt()
    return u[:, :rank] * root, root[:, None] * vh[:rank]


def _copy_bias(source: nn.Module, dest: nn.Module) -> None:
    if isinstance(source.bias, torch.Tensor) and isinstance(dest.bias, torch.Tensor):
        dest.bias.copy_(source.bias.detach())


def _factor_linear(layer: nn.Linear, factors: Any, rank: int) -> nn.Module:
    left, right = _split(factors, rank)
    dtype = layer.weight.dtype
    first = nn.Linear(layer.in_features, rank, bias=False)
    second = nn.Linear(rank, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(right.to(dtype))
        second.weight.copy_(left.to(dtype))
        _copy_bias(layer, second)
    return nn.Sequential(first, second)


def _conv_kwargs(layer: nn.Conv2d) -> dict[str, Any]:
    return {
        "stride": layer.stride,
        "padding": layer.padding,
        "dilation": layer.dilation,
        "padding_mode": layer.padding_mode,
    }


def _factor_channel_svd(layer: nn.Conv2d, factors: Any, rank: int) -> nn.Module:
    left, right = _split(factors, rank)
    kh, kw = layer.kernel_size
    dtype = layer.weight.dtype
    first = nn.Conv2d(layer.in_channels, rank, (kh, kw), bias=False, **_conv_kwargs(layer))
    second = nn.Conv2d(rank, layer.out_channels, 1, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(right.reshape(rank, layer.in_channels, kh, kw).to(dtype))
        second.weight.copy_(left.reshape(layer.out_channels, rank, 1, 1).to(dtype))
        _copy_bias(layer, second)
    return nn.Sequential(first, second)


def _factor_tucker2(layer: nn.Conv2d, factors: Any, ranks: tuple[int, ...]) -> nn.Module:
    u_out, u_in, w = factors
    r_out, r_in = ranks
    u_out, u_in = u_out[:, :r_out], u_in[:, :r_in]
    core = torch.einsum("oihw,or,is->rshw", w, u_out, u_in)
    dtype = layer.weight.dtype
    kh, kw = layer.kernel_size
    first = nn.Conv2d(layer.in_channels, r_in, 1, bias=False)
    middle = nn.Conv2d(r_in, r_out, (kh, kw), bias=False, **_conv_kwargs(layer))
    last = nn.Conv2d(r_out, layer.out_channels, 1, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(u_in.T.reshape(r_in, layer.in_channels, 1, 1).to(dtype))
        middle.weight.copy_(core.to(dtype))
        last.weight.copy_(u_out.reshape(layer.out_channels, r_out, 1, 1).to(dtype))
        _copy_bias(layer, last)
    return nn.Sequential(first, middle, last)


def factorize(d: Decomposition, ranks: tuple[int, ...]) -> nn.Module:
    if d.kind == "linear_svd":
        return _factor_linear(d.layer, d.factors, ranks[0])  # type: ignore[arg-type]
    if d.kind == "channel_svd":
        return _factor_channel_svd(d.layer, d.factors, ranks[0])  # type: ignore[arg-type]
    return _factor_tucker2(d.layer, d.factors, ranks)  # type: ignore[arg-type]


def replace_layer(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)
