"""What a user of a decoder LLM reads about a compressed model: perplexity on held-out text (with
its standard error, so a difference can be called noise or not), whether greedy continuations
still match the original's, and decode speed at batch 1 with a KV cache (time to first token and
tokens per second), in transformers or in ONNX Runtime GenAI.
"""

from __future__ import annotations

import inspect
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class PerplexityResult:
    ppl: float
    tokens: int  # tokens scored (each predicted from at least one token of context)
    nll_mean: float  # nats per token
    nll_se: float  # standard error of nll_mean
    windows: int
    # "windows": se of the token-weighted mean across windows (2 or more windows); "tokens":
    # se across single tokens (one window only; tokens are correlated, so it reads low).
    se_over: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DecodeSpeed:
    ttft_ms: float  # prefill plus the first token, median over repeats
    decode_tokens_per_s: float  # over the tokens after the first, median over repeats
    runtime: str  # "transformers" or "onnxruntime-genai"
    device: str
    prompt_tokens: int
    new_tokens: int
    repeats: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Alternated:
    a: DecodeSpeed
    b: DecodeSpeed
    rounds: int

    def as_json(self) -> dict[str, Any]:
        return {"a": self.a.as_json(), "b": self.b.as_json(), "rounds": self.rounds}


# --- perplexity ---------------------------------------------------------------------------------


def _windows(length: int, window: int, stride: int) -> Iterator[tuple[int, int, int]]:
    """(begin, end, first scored position) of each window over a sequence, the HF sliding-window
    recipe: a window scores only the tokens no earlier window scored, and never its own first
    token (it has no context inside the window)."""
    prev_end = 0
    for begin in range(0, length, stride):
        end = min(begin + window, length)
        first = max(begin + 1, prev_end)
        if first < end:
            yield begin, end, first
        prev_end = end
        if end == length:
            return


def _window_nll(model: Any, batch: torch.Tensor) -> torch.Tensor:
    """Per-position NLL (batch, L-1) of tokens 1..L-1 given those before, in float32."""
    logits = model(input_ids=batch, use_cache=False).logits[:, :-1].float()
    targets = batch[:, 1:]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
    ).view(targets.shape)


def _standard_error(
    sums: list[float], counts: list[int], token_nll: torch.Tensor
) -> tuple[float, str]:
    total = sum(counts)
    mean = sum(sums) / total
    k = len(counts)
    if k >= 2:
        # Ratio-estimator variance of a token-weighted mean of window means.
        resid = sum((s - n * mean) ** 2 for s, n in zip(sums, counts, strict=True))
        return math.sqrt(resid * k / (k - 1)) / total, "windows"
    if token_nll.numel() >= 2:
        return float(token_nll.std().item()) / math.sqrt(token_nll.numel()), "tokens"
    return 0.0, "tokens"


@torch.inference_mode()
def perplexity(
    model: Any,
    token_ids: torch.Tensor,
    *,
    window: int = 512,
    stride: int | None = None,
    batch: int = 4,
) -> PerplexityResult:
    """Perplexity of a transformers causal LM on ``token_ids``: one sequence (1-D) or independent
    blocks (n, L). Windows of ``window`` tokens every ``stride`` (default: ``window``) tokens;
    each token is scored once and counted once. Windows of equal length run ``batch`` at a time.
    """
    stride = stride or window
    if not 0 < stride <= window:
        raise ValueError(f"stride must be in 1..window ({window}), got {stride}")
    rows = token_ids.view(1, -1) if token_ids.dim() == 1 else token_ids
    if rows.dim() != 2 or rows.shape[1] < 2:
        raise ValueError(
            f"token_ids must be 1-D or (n, L) with L >= 2, got {tuple(token_ids.shape)}"
        )
    device = next(model.parameters()).device
    rows = rows.to(device=device, dtype=torch.long)
    spans = [
        (r, begin, end, first)
        for r in range(rows.shape[0])
        for begin, end, first in _windows(rows.shape[1], window, stride)
    ]
    by_length: dict[int, list[tuple[int, int, int, int]]] = {}
    for span in spans:
        by_length.setdefault(span[2] - span[1], []).append(span)
    sums: list[float] = []
    counts: list[int] = []
    scored: list[torch.Tensor] = []
    for group in by_length.values():
        for i in range(0, len(group), batch):
            chunk = group[i : i + batch]
            ids = torch.stack([rows[r, begin:end] for r, begin, end, _ in chunk])
            nll = _window_nll(model, ids)
            for j, (_, begin, _end, first) in enumerate(chunk):
                # Position p of the window is predicted by logits row p - begin - 1.
                kept = nll[j, first - begin - 1 :].double().cpu()
                scored.append(kept)
                sums.append(float(kept.sum()))
                counts.append(kept.numel())
    token_nll = torch.cat(scored)
    nll_mean = sum(sums) / sum(counts)
    se, se_over = _standard_error(sums, counts, token_nll)
    return PerplexityResult(
        ppl=math.exp(nll_mean),
        tokens=sum(counts),
        nll_mean=nll_mean,
        nll_se=se,
        windows=len(counts),
        se_over=se_over,
    )


# --- greedy continuations -----------------------------------------------------------------------


def _device_of(model: Any) -> torch.device:
    return next(model.parameters()).device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return set(eos) if isinstance(eos, list | tuple) else {int(eos)}


def _cache_argument(model: Any) -> str:
    # transformers 5.x renamed forward's ``past_key_values`` to ``cache`` (the old name warns and
    # goes in 5.40); 4.x only knows the old one.
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def _greedy_steps(model: Any, input_ids: torch.Tensor, steps: int) -> Iterator[int]:
    """Greedy tokens one at a time from a KV cache; the caller decides when to stop."""
    cache_name = _cache_argument(model)
    mask = torch.ones_like(input_ids)
    out = model(input_ids=input_ids, attention_mask=mask, use_cache=True)
    for step in range(steps):
        token = out.logits[:, -1].argmax(dim=-1, keepdim=True)
        yield int(token.item())
        if step + 1 == steps:
            return
        mask = torch.cat([mask, torch.ones_like(token)], dim=1)
        cache = getattr(out, "cache", None)
        if cache is None:
            cache = out.past_key_values
        out = model(input_ids=token, attention_mask=mask, use_cache=True, **{cache_name: cache})


@torch.inference_mode()
def greedy_tokens(
    model: Any, tokenizer: Any, prompts: Sequence[str], *, new_tokens: int = 12
) -> list[list[int]]:
    """Each prompt's greedy continuation (new tokens only, up to and including an EOS), one prompt
    at a time so that no padding can change a logit."""
    device = _device_of(model)
    stop = _eos_ids(model, tokenizer)
    result: list[list[int]] = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"].to(device)
        tokens: list[int] = []
        for token in _greedy_steps(model, ids, new_tokens):
            tokens.append(token)
            if token in stop:
                break
        result.append(tokens)
    return result


def agreement(reference: Sequence[Sequence[int]], candidate: Sequence[Sequence[int]]) -> list[int]:
    """Per prompt, how many tokens the candidate's continuation shares with the reference's
    before the first difference."""
    if len(reference) != len(candidate):
        raise ValueError(f"{len(reference)} reference continuations, {len(candidate)} candidate")
    counts = []
    for ref, cand in zip(reference, candidate, strict=True):
        n = 0
        for r, c in zip(ref, cand, strict=False):
            if r != c:
                break
            n += 1
        counts.append(n)
    return counts


# --- decode speed -------------------------------------------------------------------------------


def _speed(
    runs: list[tuple[float, float]], *, runtime: str, device: str, prompt: int, new: int
) -> DecodeSpeed:
    return DecodeSpeed(
        ttft_ms=statistics.median(t for t, _ in runs) * 1000.0,
        decode_tokens_per_s=statistics.median(r for _, r in runs),
        runtime=runtime,
        device=device,
        prompt_tokens=prompt,
        new_tokens=new,
        repeats=len(runs),
    )


def _check_counts(new_tokens: int, repeats: int) -> None:
    if new_tokens < 2 or repeats < 1:
        raise ValueError(f"need new_tokens >= 2 and repeats >= 1, got {new_tokens}, {repeats}")


@torch.inference_mode()
def decode_speed_torch(
    model: Any,
    tokenizer: Any,
    prompt: str,
    *,
    new_tokens: int = 32,
    repeats: int = 3,
    budget_s: float | None = None,
) -> DecodeSpeed:
    """Batch-1 greedy decoding with a KV cache in transformers, EOS ignored so that every run
    decodes ``new_tokens``; one untimed warm-up run first. ``budget_s``: fewer repeats (at
    least one) where the warm-up says ``repeats`` would not fit."""
    _check_counts(new_tokens, repeats)
    device = _device_of(model)
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"].to(device)
    runs: list[tuple[float, float]] = []
    attempt = 0
    while attempt <= repeats:
        _sync(device)
        start = time.perf_counter()
        steps = _greedy_steps(model, ids, new_tokens)
        next(steps)
        _sync(device)
        first = time.perf_counter()
        for _ in steps:
            pass
        _sync(device)
        end = time.perf_counter()
        if attempt > 0:
            runs.append((first - start, (new_tokens - 1) / (end - first)))
        elif budget_s is not None:
            repeats = max(1, min(repeats, int(budget_s / max(end - start, 1e-9))))
        attempt += 1
    return _speed(
        runs, runtime="transformers", device=str(device), prompt=ids.shape[1], new=new_tokens
    )


def decode_speed_genai(
    folder: Path | str, prompt: str, *, new_tokens: int = 32, repeats: int = 3
) -> DecodeSpeed:
    """The same measurement in ONNX Runtime GenAI on a model builder's output folder: greedy
    search, min_length = max_length so that EOS cannot end a run early."""
    import onnxruntime_genai as og

    _check_counts(new_tokens, repeats)
    model = og.Model(str(folder))
    ids = og.Tokenizer(model).encode(prompt)
    length = len(ids) + new_tokens
    runs: list[tuple[float, float]] = []
    for attempt in range(repeats + 1):
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=length, min_length=length, do_sample=False)
        generator = og.Generator(model, params)
        start = time.perf_counter()
        generator.append_tokens(ids)  # the prefill
        generator.generate_next_token()
        first = time.perf_counter()
        decoded = 1
        while not generator.is_done():
            generator.generate_next_token()
            decoded += 1
        end = time.perf_counter()
        if decoded != new_tokens:
            raise RuntimeError(f"onnxruntime-genai decoded {decoded} tokens, not {new_tokens}")
        if attempt > 0:
            runs.append((first - start, (decoded - 1) / (end - first)))
        del generator
    return _speed(
        runs,
        runtime="onnxruntime-genai",
        device=str(model.device_type).lower(),
        prompt=len(ids),
        new=new_tokens,
    )


def alternate(
    fn_a: Callable[[], DecodeSpeed], fn_b: Callable[[], DecodeSpeed], rounds: int = 3
) -> Alternated:
    """Run two measurements in turns (a, b, b, a, a, b, ...) and keep each one's median: on a
    shared machine speed drifts, and measuring all of a then all of b would put the drift between
    them. The order flips each round: whichever runs first in a round runs in the caches and
    clocks the other left behind, and a fixed order would hand that to the same side every time.
    Each fn is one measurement, e.g. ``lambda: decode_speed_torch(m, tok, p, repeats=1)``."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    a_runs: list[DecodeSpeed] = []
    b_runs: list[DecodeSpeed] = []
    for round_ in range(rounds):
        if round_ % 2:
            b_runs.append(fn_b())
            a_runs.append(fn_a())
        else:
            a_runs.append(fn_a())
            b_runs.append(fn_b())
    return Alternated(a=median_speed(a_runs), b=median_speed(b_runs), rounds=rounds)


def median_speed(runs: list[DecodeSpeed]) -> DecodeSpeed:
    """Each figure's median over runs of one model (its repeats summed)."""
    first = runs[0]
    return DecodeSpeed(
        ttft_ms=statistics.median(r.ttft_ms for r in runs),
        decode_tokens_per_s=statistics.median(r.decode_tokens_per_s for r in runs),
        runtime=first.runtime,
        device=first.device,
        prompt_tokens=first.prompt_tokens,
        new_tokens=first.new_tokens,
        repeats=sum(r.repeats for r in runs),
    )
