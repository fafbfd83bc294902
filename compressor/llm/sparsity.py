"""N:M sparsity (2:4, what sparse tensor cores run) for a causal LM's linears, chosen with the
calibration text rather than by magnitude alone.

- SparseGPT (Frantar & Alistarh, 2023): column by column, in each run of m inputs the weights
  with the smallest w^2 / [H^-1]_jj^2 are zeroed, and each zeroed weight's error is pushed onto
  the columns not yet visited through H^-1, as GPTQ does with rounding errors.
- Wanda (Sun et al., 2023): zero the smallest |w_ij| * ||x_j|| in each run of m, nothing updated.

Both read the input Hessian H = 2 X^T X / N that the layer walk already collects
(compressor/llm/layerwise.py). Columns stay in their order: the runs of m are consecutive inputs.
"""

from __future__ import annotations

import torch

from compressor.llm.rounding import inverse_cholesky

SPARSITY_METHODS = ("sparsegpt", "wanda")


def _prune_smallest(score: torch.Tensor, *, n: int, m: int) -> torch.Tensor:
    """True where a weight goes: the m - n lowest scores of each run of m, per row."""
    rows, cols = score.shape
    runs = score.reshape(rows, cols // m, m)
    low = runs.topk(m - n, dim=-1, largest=False).indices
    return torch.zeros_like(runs, dtype=torch.bool).scatter_(-1, low, True).reshape(rows, cols)


def wanda(weight: torch.Tensor, hessian: torch.Tensor, *, n: int, m: int) -> torch.Tensor:
    norms = (hessian.diagonal() / 2).clamp(min=0).sqrt()
    pruned = _prune_smallest(weight.abs() * norms[None, :], n=n, m=m)
    return weight.masked_fill(pruned, 0.0)


def sparsegpt(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    *,
    n: int,
    m: int,
    damp: float = 0.01,
    block: int = 128,
) -> tuple[torch.Tensor, float]:
    """The pruned weight and the damping that made H invertible."""
    w = weight.float().clone()
    h = hessian.float().clone()
    dead = h.diagonal() == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    hinv, used = inverse_cholesky(h, damp)
    columns = w.shape[1]
    block = max(m, block - block % m)
    for start in range(0, columns, block):
        end = min(start + block, columns)
        w1 = w[:, start:end].clone()
        err1 = torch.zeros_like(w1)
        hinv1 = hinv[start:end, start:end]
        pruned = torch.zeros_like(w1, dtype=torch.bool)
        for i in range(end - start):
            if i % m == 0:
                run = w1[:, i : i + m] ** 2 / hinv1.diagonal()[i : i + m][None, :] ** 2
                pruned[:, i : i + m] = _prune_smallest(run, n=n, m=m)
            kept = w1[:, i].masked_fill(pruned[:, i], 0.0)
            err = (w1[:, i] - kept) / hinv1[i, i]
            w1[:, i:] -= err[:, None] * hinv1[i, i:][None, :]
            w1[:, i] = kept
            err1[:, i] = err
        w[:, start:end] = w1
        w[:, end:] -= err1 @ hinv[start:end, end:]
    return w.to(weight.dtype), used


def prune(
    method: str, weight: torch.Tensor, hessian: torch.Tensor, *, n: int, m: int, damp: float
) -> tuple[torch.Tensor, float | None]:
    if weight.shape[1] % m:
        raise ValueError(f"{weight.shape[1]} inputs do not split into runs of {m}")
    if method == "wanda":
        return wanda(weight, hessian, n=n, m=m), None
    return sparsegpt(weight, hessian, n=n, m=m, damp=damp)


__all__ = ["SPARSITY_METHODS", "prune", "sparsegpt", "wanda"]
