"""Fidelity of a compressed model's outputs against the original's on the same inputs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def paired_standard_error(agreement: float, rows: int) -> float:
    """One standard error of an accuracy difference between two models on the same rows: only
    rows where they disagree can move it, so its variance is at most that share over n."""
    return math.sqrt(max(1.0 - agreement, 1.0 / rows) / rows)


def _per_sample(outputs: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Token outputs are mean-pooled over real tokens, as sentence embedders do."""
    out = outputs.astype(np.float64)
    if out.ndim == 3:
        if mask is None:
            return out.mean(axis=1)
        weights = mask.astype(np.float64)[..., None]
        return (out * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    return out.reshape(out.shape[0], -1)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    denom = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return (a * b).sum(axis=-1) / np.clip(denom, 1e-12, None)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def fidelity(
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    attention_mask: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> dict[str, Any]:
    if reference.shape != candidate.shape:
        raise ValueError(f"output shapes differ: {reference.shape} vs {candidate.shape}")
    ref = _per_sample(reference, attention_mask)
    cand = _per_sample(candidate, attention_mask)
    cos = _cosine(ref, cand)
    result: dict[str, Any] = {
        "samples": int(ref.shape[0]),
        "cosine_mean": float(cos.mean()),
        "cosine_min": float(cos.min()),
        "max_abs_error": float(np.abs(reference.astype(np.float64) - candidate).max()),
    }
    if reference.ndim == 2:
        ref_lp, cand_lp = _log_softmax(ref), _log_softmax(cand)
        result["top1_agreement"] = float((ref.argmax(-1) == cand.argmax(-1)).mean())
        result["kl_divergence"] = float((np.exp(ref_lp) * (ref_lp - cand_lp)).sum(-1).mean())
        if labels is not None:
            result["accuracy_original"] = float((ref.argmax(-1) == labels).mean())
            result["accuracy_compressed"] = float((cand.argmax(-1) == labels).mean())
    return result
