"""Original against compressed, as an LLM user judges them: perplexity on held-out text, greedy
continuations, next-token fidelity, decode speed in the target runtime."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compressor.llm.heap import trim
from compressor.llm.measure import (
    DecodeSpeed,
    PerplexityResult,
    agreement,
    alternate,
    decode_speed_genai,
    decode_speed_torch,
    greedy_tokens,
    median_speed,
    perplexity,
)
from compressor.llm.report import DecodeFigures, GenerationFigures, PerplexityFigures
from compressor.measure.params import torch_param_stats

# Next-token fidelity is read on the first tokens of the eval text: logits are vocabulary-wide,
# so a few hundred positions already cost tens of MB per model.
FIDELITY_TOKENS = 256
NEW_TOKENS = 12
DECODE_TOKENS = 32


@dataclass
class Evaluated:
    ppl: PerplexityResult
    greedy: list[list[int]]
    logits: np.ndarray  # (FIDELITY_TOKENS, vocab) float32
    stats: dict[str, Any]


def evaluate(
    model: Any, tokenizer: Any, *, eval_ids: torch.Tensor, prompts: list[str], window: int
) -> Evaluated:
    ppl, logits = _scored(model, eval_ids, window)
    greedy = greedy_tokens(model, tokenizer, prompts, new_tokens=NEW_TOKENS)
    return Evaluated(ppl, greedy, logits, torch_param_stats(model))


def evaluate_genai(
    folder: Path, tokenizer: Any, *, eval_ids: torch.Tensor, prompts: list[str], window: int
) -> Evaluated:
    """The GenAI artifact in its own runtime (compressor/llm/genai_runtime.py)."""
    from compressor.formats.onnx_io import onnx_parameter_stats
    from compressor.llm.genai_runtime import GenaiScorer, genai_greedy

    ppl, logits = _scored(GenaiScorer(folder), eval_ids, window)
    greedy = genai_greedy(folder, tokenizer, prompts, new_tokens=NEW_TOKENS)
    return Evaluated(ppl, greedy, logits, onnx_parameter_stats(folder / "model.onnx"))


def _scored(model: Any, eval_ids: torch.Tensor, window: int) -> tuple[PerplexityResult, np.ndarray]:
    with torch.inference_mode():
        ppl = perplexity(model, eval_ids, window=window, batch=1)
        head = eval_ids[:FIDELITY_TOKENS].reshape(1, -1)
        logits = model(input_ids=head, use_cache=False).logits[0].float().numpy()
    return ppl, logits


def perplexity_figures(
    before: PerplexityResult, after: PerplexityResult, *, window: int, text: str
) -> PerplexityFigures:
    return PerplexityFigures(
        original=round(before.ppl, 4),
        compressed=round(after.ppl, 4),
        relative_increase=round(after.ppl / before.ppl - 1, 5),
        tokens=after.tokens,
        window=window,
        text=text,
        standard_error=round(after.nll_se, 5),
    )


def generation_figures(reference: list[list[int]], candidate: list[list[int]]) -> GenerationFigures:
    agreed = agreement(reference, candidate)
    return GenerationFigures(
        prompts=len(agreed),
        new_tokens=NEW_TOKENS,
        agreed_tokens=agreed,
        agreed_mean=round(sum(agreed) / max(len(agreed), 1), 3),
        fully_agreed=sum(1 for a in agreed if a >= NEW_TOKENS),
    )


# Rounds beyond the first stop here: on a large model one round of loading and decoding both
# models costs minutes on a small CPU worker (a 4.3 GiB bfloat16 model: about 80 s of decoding alone).
DECODE_ROUNDS = 3
DECODE_BUDGET_S = 60.0


@dataclass(frozen=True)
class FirstRound:
    """Each model's decode speed, timed while it was loaded for its perplexity."""

    original: DecodeSpeed
    compressed: DecodeSpeed
    seconds: float  # both timings together


def time_decode(
    model: Any, tokenizer: Any, prompt: str, *, budget_s: float = DECODE_BUDGET_S
) -> tuple[DecodeSpeed, float]:
    started = time.monotonic()
    speed = decode_speed_torch(
        model, tokenizer, prompt, new_tokens=DECODE_TOKENS, budget_s=budget_s / 3
    )
    return speed, time.monotonic() - started


def decode_in_torch(
    load_original: Callable[[], Any],
    load_compressed: Callable[[], Any],
    tokenizer: Any,
    prompt: str,
    first: FirstRound,
    *,
    budget_s: float = DECODE_BUDGET_S,
) -> DecodeFigures:
    """Both models generate in transformers, alternately (timings drift on a shared machine),
    each loaded for its turn and freed after it, so the job never holds two models. The first
    round is the one timed while each was loaded for measuring; more rounds follow, up to
    DECODE_ROUNDS, while they fit ``budget_s`` (the worker's MeasureSettings.decode_budget_s)."""

    def timed_once(load: Callable[[], Any]) -> DecodeSpeed:
        model = load()
        try:
            return decode_speed_torch(model, tokenizer, prompt, new_tokens=DECODE_TOKENS)
        finally:
            del model
            trim()

    originals, compresseds = [first.original], [first.compressed]
    spent, last = 0.0, first.seconds
    while len(originals) < DECODE_ROUNDS and spent + last <= budget_s:
        started = time.monotonic()
        originals.append(timed_once(load_original))
        compresseds.append(timed_once(load_compressed))
        last = time.monotonic() - started
        spent += last
    rounds = len(originals)
    return _decode_figures(
        "transformers",
        median_speed(originals),
        median_speed(compresseds),
        note="vllm artifact timed with transformers on CPU, which dequantizes compressed-tensors "
        "weights on load: no speedup is expected here; vLLM's int4 kernels need a GPU worker. "
        f"{rounds} alternated round{'s' if rounds > 1 else ''} (more stop at "
        f"{budget_s:.0f} s)",
    )


def decode_in_genai(original: Path, compressed: Path, prompt: str) -> DecodeFigures:
    timed = alternate(
        lambda: decode_speed_genai(original, prompt, new_tokens=DECODE_TOKENS),
        lambda: decode_speed_genai(compressed, prompt, new_tokens=DECODE_TOKENS),
    )
    return _decode_figures(
        "onnxruntime-genai",
        timed.a,
        timed.b,
        note="both folders generated by onnxruntime-genai on CPU with their KV cache, batch 1; "
        "the original is the GenAI builder's fp32 export of the upload",
    )


def _decode_figures(runtime: str, a: Any, b: Any, *, note: str) -> DecodeFigures:
    return DecodeFigures(
        runtime=runtime,
        device="cpu",
        new_tokens=DECODE_TOKENS,
        ttft_ms_original=round(a.ttft_ms, 3),
        ttft_ms_compressed=round(b.ttft_ms, 3),
        tokens_per_s_original=round(a.decode_tokens_per_s, 3),
        tokens_per_s_compressed=round(b.decode_tokens_per_s, 3),
        note=note,
    )
