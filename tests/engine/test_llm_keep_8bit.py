"""keep_8bit: chosen linears of an int4 causal LM at 8 bits, in both formats that hold mixed
widths (compressed-tensors for vllm, GGUF for llama.cpp), refused where none does, and tried
by a causal LM's goal search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from compressor.errors import InvalidRecipeError
from compressor.llm.ct_sink import CompressedTensorsSink, DequantizedSink
from compressor.llm.layerwise import matches, quantize_causal_lm
from compressor.recipe import Recipe, check_recipe_for_kind
from compressor.target import Target
from tests.fixtures.causal_lm import save_tiny_causal_lm

torch.manual_seed(0)
CALIBRATION = torch.randint(0, 49152, (6, 48))
DOWN = ("mlp.down_proj",)
LLAMA = {"kind": "causal_lm", "causal_lm": {"architecture": "LlamaForCausalLM"}}


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_causal_lm("llama", tmp_path_factory.mktemp("keep8") / "llama")


def _logits(folder: Path) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    with torch.no_grad():
        return model(input_ids=CALIBRATION[:2]).logits


def test_names_match_by_suffix_full_name_or_layer_prefix() -> None:
    name = "model.layers.1.mlp.down_proj"
    assert matches(name, ["mlp.down_proj"]) and matches(name, ["down_proj"])
    assert matches(name, [name]) and matches(name, ["model.layers.1"])
    assert not matches(name, ["model.layers.10"]) and not matches(name, ["n_proj"])


def test_kept_linears_are_8_bit_in_the_vllm_directory_and_lose_less(
    llama: Path, tmp_path: Path
) -> None:
    kwargs = {"bits": 4, "method": "gptq", "calibration": CALIBRATION, "symmetric": True}
    mixed = quantize_causal_lm(
        llama, CompressedTensorsSink(tmp_path / "mixed"), keep_8bit=DOWN, **kwargs
    )
    plain = quantize_causal_lm(llama, CompressedTensorsSink(tmp_path / "plain"), **kwargs)
    kept = mixed.kept_8bit()
    assert kept == ["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"], kept
    assert plain.kept_8bit() == []
    # Each kept linear's own output error falls: 8 bits against 4.
    error = {r.name: r.relative_error for r in plain.records}
    for record in mixed.records:
        if record.name in kept:
            assert record.bits == 8 and record.relative_error < error[record.name] / 4, record
    config = json.loads((tmp_path / "mixed" / "config.json").read_text())["quantization_config"]
    widths = {
        g["weights"]["num_bits"]: g["targets"] for g in config["config_groups"].values()
    }  # fmt: skip
    assert sorted(widths) == [4, 8] and len(widths[8]) == 2, widths
    # transformers loads both widths; the mixed model sits nearer the original.
    reference = _logits(llama)
    gap = {d: float((_logits(tmp_path / d) - reference).pow(2).mean()) for d in ("mixed", "plain")}
    assert 0 < gap["mixed"] < gap["plain"], gap


def test_kept_linears_are_q8_0_in_the_gguf(llama: Path, tmp_path: Path) -> None:
    from gguf import GGUFReader

    from compressor.llm.candidates import _Tee
    from compressor.llm.gguf_sink import GGUF_FILE, GgufSink

    config = json.loads((llama / "config.json").read_text())
    sink = _Tee(
        DequantizedSink(tmp_path / "judge"),
        GgufSink(tmp_path / "gguf", config=config, tokenizer_dir=llama),
    )
    quantize_causal_lm(
        llama, sink, bits=4, method="rtn", calibration=CALIBRATION, group_size=32,
        keep_8bit=DOWN,
    )  # fmt: skip
    types = {
        t.name: t.tensor_type.name for t in GGUFReader(str(tmp_path / "gguf" / GGUF_FILE)).tensors
    }
    assert types["blk.0.ffn_down.weight"] == types["blk.1.ffn_down.weight"] == "Q8_0", types
    assert types["blk.0.ffn_gate.weight"] == "Q4_1" and types["blk.0.attn_v.weight"] == "Q4_1"


def test_a_name_that_matches_nothing_is_refused_with_the_names_there_are(
    llama: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidRecipeError, match="mlp.down_proj") as refused:
        quantize_causal_lm(
            llama, CompressedTensorsSink(tmp_path / "ct"), bits=4, method="rtn",
            calibration=None, keep_8bit=("ffn_down",),
        )  # fmt: skip
    assert "ffn_down" in str(refused.value)


def _recipe(**step: object) -> Recipe:
    base = {"technique": "quantization", "scheme": "int4_weight_only", "keep_8bit": list(DOWN)}
    return Recipe.model_validate({"steps": [{**base, **step}]})


def test_keep_8bit_is_refused_where_no_artifact_holds_it() -> None:
    check_recipe_for_kind(_recipe(), "hf", Target(runtime="vllm"), inspection=LLAMA)
    check_recipe_for_kind(_recipe(), "hf", Target(runtime="llama.cpp"), inspection=LLAMA)
    with pytest.raises(InvalidRecipeError, match="one bit width"):
        check_recipe_for_kind(
            _recipe(), "hf", Target(runtime="onnxruntime-genai"), inspection=LLAMA
        )
    with pytest.raises(InvalidRecipeError, match="causal LM"):
        check_recipe_for_kind(_recipe(), "hf", Target(runtime="onnxruntime"), inspection=None)
    with pytest.raises(ValueError, match="int4_weight_only"):
        _recipe(scheme="int8_weight_only")


@pytest.mark.parametrize("runtime", ["vllm", "llama.cpp"])
def test_a_causal_lm_goal_tries_the_sensitive_linears_at_8_bits(runtime: str) -> None:
    from compressor.search.goal import Goal
    from compressor.search.llm_settings import SENSITIVE, llm_settings

    goal = Goal(objective="size", max_perplexity_increase=0.1)
    kept = [step.keep_8bit for step, _ in llm_settings(runtime, goal) if step.keep_8bit]
    assert kept == [SENSITIVE], kept
