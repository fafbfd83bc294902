"""Perplexity, greedy agreement and decode speed of causal LMs, and the default texts, on tiny
random-init models with SmolLM2's tokenizer (seconds each)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from compressor.llm.measure import (
    DecodeSpeed,
    agreement,
    alternate,
    decode_speed_genai,
    decode_speed_torch,
    greedy_tokens,
    perplexity,
)
from compressor.llm.texts import (
    default_calibration_texts,
    default_eval_text,
    default_prompts,
    split_held_out,
    texts_from_jsonl_rows,
    token_blocks,
)
from tests.fixtures.causal_lm import save_tiny_causal_lm

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _load(folder: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(str(folder))


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_causal_lm("llama", tmp_path_factory.mktemp("llama") / "model")


@pytest.fixture(scope="module")
def llama(llama_dir: Path) -> tuple[Any, Any]:
    return _load(llama_dir)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    return _load(save_tiny_causal_lm("gpt2", tmp_path_factory.mktemp("gpt2") / "model"))


def _ids(tokenizer: Any, length: int) -> torch.Tensor:
    ids = tokenizer(default_eval_text(), return_tensors="pt")["input_ids"][0]
    return ids[:length]


# --- perplexity ---------------------------------------------------------------------------------


def test_perplexity_is_exp_of_the_models_own_loss(llama: tuple[Any, Any]) -> None:
    model, tokenizer = llama
    ids = _ids(tokenizer, 48)
    with torch.no_grad():
        loss = model(input_ids=ids[None], labels=ids[None]).loss.item()
    result = perplexity(model, ids)
    assert result.tokens == 47 and result.windows == 1
    assert result.ppl == pytest.approx(math.exp(loss), rel=1e-5)
    assert result.nll_mean == pytest.approx(loss, rel=1e-5)


def test_window_that_holds_the_text_equals_one_pass(llama: tuple[Any, Any]) -> None:
    model, tokenizer = llama
    ids = _ids(tokenizer, 40)
    one_pass = perplexity(model, ids, window=512)
    exact_fit = perplexity(model, ids, window=40)
    assert exact_fit.tokens == one_pass.tokens == 39
    assert exact_fit.ppl == pytest.approx(one_pass.ppl, rel=1e-6)


def _hf_recipe(model: Any, ids: torch.Tensor, window: int, stride: int) -> tuple[float, int]:
    """The sliding-window perplexity of the transformers docs, written out with exact counts."""
    total, count, prev_end = 0.0, 0, 0
    for begin in range(0, len(ids), stride):
        end = min(begin + window, len(ids))
        chunk = ids[begin:end][None]
        labels = chunk.clone()
        labels[:, : max(prev_end - begin, 0)] = -100
        scored = int((labels[:, 1:] != -100).sum())
        with torch.no_grad():
            total += model(input_ids=chunk, labels=labels).loss.item() * scored
        count += scored
        prev_end = end
        if end == len(ids):
            break
    return math.exp(total / count), count


@pytest.mark.parametrize(("window", "stride"), [(16, 8), (16, 16), (20, 7)])
def test_sliding_windows_match_the_hf_recipe(
    llama: tuple[Any, Any], window: int, stride: int
) -> None:
    model, tokenizer = llama
    ids = _ids(tokenizer, 61)
    expected, count = _hf_recipe(model, ids, window, stride)
    result = perplexity(model, ids, window=window, stride=stride, batch=3)
    assert result.tokens == count
    assert result.ppl == pytest.approx(expected, rel=1e-5)
    assert result.windows >= 4 and result.se_over == "windows" and result.nll_se > 0


def test_blocks_are_scored_independently_and_batching_changes_nothing(
    llama: tuple[Any, Any],
) -> None:
    model, tokenizer = llama
    blocks = _ids(tokenizer, 5 * 24).view(5, 24)
    batched = perplexity(model, blocks, window=24, batch=4)
    singles = [perplexity(model, row, window=24) for row in blocks]
    assert batched.tokens == 5 * 23 and batched.windows == 5
    mean = sum(s.nll_mean for s in singles) / 5
    assert batched.nll_mean == pytest.approx(mean, rel=1e-5)


def _constant_gpt2(model: Any, favoured: int | None) -> Any:
    """GPT-2 whose final LayerNorm emits the same vector e_0 for every position, so its next-token
    distribution is constant: uniform, or all but certain of ``favoured``."""
    import copy

    constant = copy.deepcopy(model)
    with torch.no_grad():
        constant.transformer.ln_f.weight.zero_()
        constant.transformer.ln_f.bias.zero_()
        constant.transformer.ln_f.bias[0] = 1.0
        constant.lm_head.weight[:, 0] = 0.0  # tied to the input embedding: still fine
        if favoured is not None:
            constant.lm_head.weight[favoured, 0] = 60.0
    return constant


def test_known_distributions_give_known_perplexities(gpt2: tuple[Any, Any]) -> None:
    model, tokenizer = gpt2
    vocab = model.config.vocab_size
    ids = _ids(tokenizer, 64)
    uniform = perplexity(_constant_gpt2(model, None), ids, window=16)
    assert uniform.ppl == pytest.approx(vocab, rel=1e-4)
    assert uniform.nll_se < 1e-5  # every token costs log(vocab): no spread at all
    certain = _constant_gpt2(model, favoured=42)
    assert perplexity(certain, torch.full((64,), 42), window=16).ppl < 1.0001
    assert perplexity(certain, ids, window=16).ppl > 1e20  # the text is never token 42


# --- greedy agreement ---------------------------------------------------------------------------


def test_agreement_counts_tokens_before_the_first_difference() -> None:
    reference = [[1, 2, 3, 4], [5, 6], [7, 8, 9], [], [1, 2]]
    candidate = [[1, 2, 3, 4], [5, 0], [0, 8, 9], [3], [1, 2, 3]]
    assert agreement(reference, candidate) == [4, 1, 0, 0, 2]
    with pytest.raises(ValueError, match="2 reference continuations, 1 candidate"):
        agreement([[1], [2]], [[1]])


@pytest.mark.parametrize("which", ["llama", "gpt2"])
def test_greedy_tokens_match_generate(which: str, request: pytest.FixtureRequest) -> None:
    model, tokenizer = request.getfixturevalue(which)
    prompts = default_prompts()[:3]
    ours = greedy_tokens(model, tokenizer, prompts, new_tokens=10)
    assert ours == greedy_tokens(model, tokenizer, prompts, new_tokens=10)
    for prompt, tokens in zip(prompts, ours, strict=True):
        enc = tokenizer(prompt, return_tensors="pt")
        out = model.generate(
            **enc,
            do_sample=False,
            num_beams=1,
            max_new_tokens=10,
            pad_token_id=tokenizer.eos_token_id,
        )
        assert tokens == out[0, enc["input_ids"].shape[1] :].tolist()
    assert agreement(ours, ours) == [len(t) for t in ours]


# --- decode speed -------------------------------------------------------------------------------


def test_decode_speed_torch(llama: tuple[Any, Any]) -> None:
    model, tokenizer = llama
    speed = decode_speed_torch(model, tokenizer, "The capital of France is", new_tokens=8)
    assert speed.ttft_ms > 0 and speed.decode_tokens_per_s > 0
    assert speed.runtime == "transformers" and speed.device == "cpu"
    assert speed.repeats == 3 and speed.new_tokens == 8 and speed.prompt_tokens == 5
    assert set(speed.as_json()) >= {"ttft_ms", "decode_tokens_per_s", "runtime", "device"}


def test_decode_speed_torch_repeats_fewer_times_where_they_would_not_fit(
    llama: tuple[Any, Any],
) -> None:
    model, tokenizer = llama
    speed = decode_speed_torch(model, tokenizer, "The capital of", new_tokens=8, budget_s=1e-6)
    assert speed.repeats == 1  # the warm-up alone outlasted the budget
    roomy = decode_speed_torch(model, tokenizer, "The capital of", new_tokens=8, budget_s=600)
    assert roomy.repeats == 3  # never more than asked


def test_decode_rounds_after_the_first_stop_at_their_budget(llama_dir: Path) -> None:
    from compressor.llm.evaluate import DECODE_BUDGET_S, DECODE_ROUNDS, FirstRound, decode_in_torch

    loads: list[str] = []

    def load(name: str) -> Any:
        loads.append(name)
        return _load(llama_dir)[0]

    _, tokenizer = _load(llama_dir)
    speed = DecodeSpeed(5.0, 100.0, "transformers", "cpu", 5, 32, 3)

    def figures(first_seconds: float, budget_s: float = DECODE_BUDGET_S) -> Any:
        loads.clear()
        return decode_in_torch(
            lambda: load("original"), lambda: load("compressed"), tokenizer, "The capital of",
            FirstRound(speed, speed, first_seconds), budget_s=budget_s,
        )  # fmt: skip

    slow = figures(DECODE_BUDGET_S + 1)  # a first round longer than the budget: no second
    assert loads == [] and slow.tokens_per_s_original == 100.0, slow
    assert "1 alternated round " in slow.note, slow.note
    quick = figures(0.1)  # a tiny model: every round, in turns
    assert loads == ["original", "compressed"] * (DECODE_ROUNDS - 1), loads
    assert f"{DECODE_ROUNDS} alternated rounds" in quick.note, quick.note
    first_only = figures(0.1, budget_s=0)  # the worker's measure_decode_budget_s at 0
    assert loads == [] and "1 alternated round " in first_only.note, (loads, first_only.note)


def test_alternate_takes_turns_and_keeps_medians() -> None:
    order: list[str] = []

    def fake(name: str, ttft: float) -> DecodeSpeed:
        order.append(name)
        ttft += len(order)  # drifting: each run slower than the last
        return DecodeSpeed(ttft, 1000.0 / ttft, "transformers", "cpu", 5, 8, 1)

    result = alternate(lambda: fake("a", 10.0), lambda: fake("b", 20.0), rounds=3)
    assert order == ["a", "b", "b", "a", "a", "b"]
    assert result.a.ttft_ms == 14.0 and result.b.ttft_ms == 23.0
    assert result.a.repeats == 3 and result.as_json()["rounds"] == 3


def test_decode_speed_genai_on_the_model_builders_output(llama_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "genai"
    built = subprocess.run(
        [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(llama_dir)]
        + ["-o", str(out), "-p", "fp32", "-e", "cpu", "-c", str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    speed = decode_speed_genai(out, "The capital of France is", new_tokens=8)
    assert speed.ttft_ms > 0 and speed.decode_tokens_per_s > 0
    assert speed.runtime == "onnxruntime-genai" and speed.device == "cpu"
    assert speed.prompt_tokens == 5 and speed.new_tokens == 8


# --- texts --------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.lower().split()


def test_default_texts_are_long_varied_and_disjoint() -> None:
    calibration = default_calibration_texts()
    evaluation = default_eval_text()
    assert len(calibration) >= 8
    for words in (_words(" ".join(calibration)), _words(evaluation)):
        assert 3000 <= len(words) <= 4200
    grams = {tuple(w[i : i + 6]) for w in map(_words, calibration) for i in range(len(w) - 5)}
    ev = _words(evaluation)
    shared = [g for g in (tuple(ev[i : i + 6]) for i in range(len(ev) - 5)) if g in grams]
    assert shared == []
    prompts = default_prompts()
    assert len(prompts) == 8 and all(p.strip() for p in prompts)


def test_texts_from_jsonl_rows_names_the_bad_row() -> None:
    assert texts_from_jsonl_rows([{"text": "a"}, {"text": "b", "id": 2}]) == ["a", "b"]
    with pytest.raises(ValueError, match=r"row 2 .*found: \['body'\]"):
        texts_from_jsonl_rows([{"text": "a"}, {"body": "b"}])
    with pytest.raises(ValueError, match="row 1"):
        texts_from_jsonl_rows([{"text": 3}])


def test_token_blocks_cut_the_stream_with_eos_between_documents(llama: tuple[Any, Any]) -> None:
    _model, tokenizer = llama
    texts = default_calibration_texts()
    first = tokenizer(texts[0], add_special_tokens=False)["input_ids"]
    blocks = token_blocks(tokenizer, texts, seq_len=64, max_blocks=10_000)
    stream = blocks.flatten().tolist()
    assert blocks.dtype == torch.int64 and blocks.shape[1] == 64
    assert stream[: len(first)] == first and stream[len(first)] == tokenizer.eos_token_id
    chosen = token_blocks(tokenizer, texts, seq_len=64, max_blocks=5, seed=1)
    assert torch.equal(chosen, token_blocks(tokenizer, texts, seq_len=64, max_blocks=5, seed=1))
    assert not torch.equal(chosen, token_blocks(tokenizer, texts, seq_len=64, max_blocks=5))
    rows = {tuple(r) for r in blocks.tolist()}
    assert chosen.shape == (5, 64) and all(tuple(r) in rows for r in chosen.tolist())
    with pytest.raises(ValueError, match="fewer than one block"):
        token_blocks(tokenizer, ["short"], seq_len=64, max_blocks=4)


def test_split_held_out_is_the_last_quarter() -> None:
    blocks = torch.arange(8 * 4).view(8, 4)
    calibration, held_out = split_held_out(blocks)
    assert torch.equal(calibration, blocks[:6]) and torch.equal(held_out, blocks[6:])
    assert split_held_out(blocks[:2])[1].shape[0] == 1
    with pytest.raises(ValueError):
        split_held_out(blocks[:1])
