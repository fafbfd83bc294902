"""Causal LMs: inspection says what they are, and only what an LLM runtime can serve is taken."""

from __future__ import annotations

from pathlib import Path

import pytest

from compressor.errors import InvalidRecipeError
from compressor.formats.detect import inspect_model_dir
from compressor.llm.rules import check_memory_fits, memory_bound
from compressor.recipe import Recipe, check_recipe_for_kind
from compressor.target import Target
from tests.fixtures.causal_lm import TINY, save_tiny_causal_lm

INT4 = {"steps": [{"technique": "quantization", "scheme": "int4_weight_only"}]}


@pytest.fixture(scope="module")
def lm_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lms")
    return {arch: save_tiny_causal_lm(arch, root / arch) for arch in TINY}


@pytest.mark.parametrize("arch", list(TINY))
def test_inspection_records_a_causal_lm_and_its_shape(lm_dirs: dict[str, Path], arch: str) -> None:
    found = inspect_model_dir(lm_dirs[arch])
    facts = found["causal_lm"]
    assert found["kind"] == "causal_lm"
    assert facts["layers"] == 2 and facts["hidden_size"] == 64
    assert facts["attention_heads"] == 4
    assert facts["kv_heads"] == TINY[arch].get("num_key_value_heads", 4)
    assert facts["vocab_size"] == 49152
    assert facts["weight_bytes"] == found["weight_bytes"] > 0
    assert facts["dtype"] == "F32"
    assert facts["tied_embeddings"] is TINY[arch].get("tie_word_embeddings", arch == "gpt2")


def test_an_encoder_is_no_causal_lm(minilm_dir: Path) -> None:
    assert "kind" not in inspect_model_dir(minilm_dir)


def _check(recipe: dict, runtime: str, *, causal: bool, arch: str = "LlamaForCausalLM") -> None:
    inspection = {"kind": "causal_lm", "causal_lm": {"architecture": arch}} if causal else {}
    target = Target(runtime=runtime)  # type: ignore[arg-type]
    check_recipe_for_kind(
        Recipe.model_validate(recipe), "huggingface", target, inspection=inspection
    )


def test_a_causal_lm_is_refused_where_no_llm_runtime_serves_it() -> None:
    with pytest.raises(InvalidRecipeError, match="KV cache.*'onnxruntime-genai' or 'vllm'"):
        _check(INT4, "onnxruntime", causal=True)
    with pytest.raises(InvalidRecipeError, match="serves causal LMs.*'onnxruntime' or 'torch'"):
        _check(INT4, "vllm", causal=False)
    with pytest.raises(InvalidRecipeError, match="int4_weight_only"):
        _check({"steps": [{"technique": "pruning", "sparsity": 0.5}]}, "vllm", causal=True)
    with pytest.raises(InvalidRecipeError, match="'int4_weight_only'"):
        int8 = {"steps": [{"technique": "quantization", "scheme": "int8_weight_only"}]}
        _check(int8, "onnxruntime-genai", causal=True)
    with pytest.raises(InvalidRecipeError, match="does not build GPT2LMHeadModel.*'vllm'"):
        _check(INT4, "onnxruntime-genai", causal=True, arch="GPT2LMHeadModel")
    _check(INT4, "vllm", causal=True)
    _check(INT4, "onnxruntime-genai", causal=True)
    _check({"steps": [{"technique": "quantization", "scheme": "bf16"}]}, "torch", causal=True)


def test_w8a8_is_served_by_vllm_and_refused_with_what_it_takes_elsewhere() -> None:
    w8a8 = {"technique": "quantization", "scheme": "int8_dynamic"}
    _check({"steps": [w8a8]}, "vllm", causal=True)
    _check({"steps": [{**w8a8, "method": "gptq", "smoothing": 0.5}]}, "vllm", causal=True)
    with pytest.raises(InvalidRecipeError, match="SmoothQuant.*takes AWQ's place"):
        _check({"steps": [{**w8a8, "method": "awq"}]}, "vllm", causal=True)
    with pytest.raises(InvalidRecipeError, match="symmetric"):
        _check({"steps": [{**w8a8, "symmetric": False}]}, "vllm", causal=True)
    with pytest.raises(InvalidRecipeError, match="'int4_weight_only'"):
        _check({"steps": [w8a8]}, "onnxruntime-genai", causal=True)
    with pytest.raises(InvalidRecipeError, match="'int4_weight_only' or 'int8_weight_only'"):
        _check({"steps": [w8a8]}, "llama.cpp", causal=True)


def test_2_4_sparsity_on_a_causal_lm_goes_to_vllm() -> None:
    sparse = {"technique": "nm_sparsity"}
    _check({"steps": [sparse]}, "vllm", causal=True)
    with pytest.raises(InvalidRecipeError, match="2:4.*not 4:8"):
        _check({"steps": [{**sparse, "n": 4, "m": 8}]}, "vllm", causal=True)
    with pytest.raises(InvalidRecipeError, match="SparseGPT or Wanda.*'vllm'"):
        _check({"steps": [sparse]}, "torch", causal=True)
    with pytest.raises(InvalidRecipeError, match="not Phi3ForCausalLM"):
        _check({"steps": [sparse]}, "vllm", causal=True, arch="Phi3ForCausalLM")
    with pytest.raises(InvalidRecipeError, match="or one nm_sparsity step"):
        _check({"steps": [sparse, {"technique": "quantization", "scheme": "int8_dynamic"}]},
               "vllm", causal=True)  # fmt: skip


def test_a_model_that_cannot_fit_a_job_is_refused_with_the_figures() -> None:
    inspection = {"causal_lm": {"weight_bytes": 4 << 30}}
    assert memory_bound(4 << 30) == 8 << 30
    with pytest.raises(InvalidRecipeError, match=r"about 8\.0 GiB.*7\.0 GiB"):
        check_memory_fits(inspection, job_memory_bytes=7 << 30)
    check_memory_fits(inspection, job_memory_bytes=8 << 30)
    check_memory_fits(inspection, job_memory_bytes=None)
