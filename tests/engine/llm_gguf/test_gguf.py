"""Runtime llama.cpp: our grids reach the GGUF blocks unchanged (up to the fp16 of d and m), the
judged model is exactly what the file dequantizes to, and transformers' GGUF loader (which undoes
llama.cpp's Q/K row permutation) computes that model's logits from the file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from compressor.errors import InvalidRecipeError, UnsupportedModelError
from compressor.llm import gguf_sink
from compressor.llm.candidates import _Tee
from compressor.llm.gguf_sink import GGUF_FILE, GgufJudgeSink, GgufSink, permute_rows
from compressor.llm.layerwise import quantize_causal_lm
from compressor.llm.quantized import QuantizedWeight
from compressor.recipe import Recipe, check_recipe_for_kind
from compressor.target import Target
from tests.fixtures.causal_lm import save_tiny_causal_lm

os.environ["HF_HUB_OFFLINE"] = "1"
torch.manual_seed(0)
TOKENS = torch.randint(0, 49152, (2, 24))
CALIBRATION = torch.randint(0, 49152, (4, 32))
# (bits, symmetric) -> the llama.cpp type our grid maps onto
TYPES = {(4, False): "Q4_1", (4, True): "Q4_0", (8, True): "Q8_0"}


class _Recorder:
    """The walk's quantized weights, as handed to the sinks."""

    def __init__(self) -> None:
        self.weights: dict[str, QuantizedWeight] = {}

    def add_quantized(self, name: str, weight: QuantizedWeight, bias: Any = None) -> None:
        self.weights[name] = weight

    def add_float(self, name: str, tensor: torch.Tensor) -> None:
        pass

    def close(self, config: dict[str, Any], *, tied_embeddings: bool) -> None:
        pass


def _untied_sharp_llama(folder: Path) -> Path:
    """The tiny Llama untied (so the file has an output tensor), its Q and K weights scaled up so
    attention is far from uniform: with random init's small weights a wrong Q/K row order would
    barely move the logits."""
    from transformers import AutoModelForCausalLM

    save_tiny_causal_lm("llama", folder)
    config = json.loads((folder / "config.json").read_text())
    config["tie_word_embeddings"] = False
    (folder / "config.json").write_text(json.dumps(config))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    with torch.no_grad():
        model.lm_head.weight.copy_(torch.randn_like(model.lm_head.weight) * 0.05)
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(12.0)
            layer.self_attn.k_proj.weight.mul_(12.0)
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _untied_sharp_llama(tmp_path_factory.mktemp("llama") / "src")


def _walk(
    source: Path, out: Path, *, bits: int, symmetric: bool, method: str = "rtn"
) -> dict[str, QuantizedWeight]:
    config = json.loads((source / "config.json").read_text())
    recorder = _Recorder()
    sink = _Tee(
        recorder,
        GgufJudgeSink(out / "judge"),
        GgufSink(out / "gguf", config=config, tokenizer_dir=source),
    )
    quantize_causal_lm(
        source, sink, bits=bits, method=method, calibration=CALIBRATION,  # type: ignore[arg-type]
        group_size=32, symmetric=symmetric,
    )  # fmt: skip
    return recorder.weights


def _hf_name(gguf_name: str) -> str:
    block, index, kind, _ = gguf_name.split(".")
    module = {
        "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    }[kind]  # fmt: skip
    return f"model.layers.{index}.{module}"


def _unpermute(tensor: torch.Tensor, heads: int) -> torch.Tensor:
    rows = tensor.shape[0]
    return (
        tensor.reshape(heads, rows // heads // 2, 2, *tensor.shape[1:])
        .swapaxes(1, 2)
        .reshape(tensor.shape)
    )


@pytest.mark.parametrize(("bits", "symmetric"), list(TYPES))
def test_the_blocks_hold_our_grid_and_the_judge_is_what_they_dequantize_to(
    llama_dir: Path, tmp_path: Path, bits: int, symmetric: bool
) -> None:
    from gguf import GGUFReader, quants

    weights = _walk(llama_dir, tmp_path, bits=bits, symmetric=symmetric, method="gptq")
    judge = load_file(str(tmp_path / "judge" / "model.safetensors"))
    reader = GGUFReader(str(tmp_path / "gguf" / GGUF_FILE))
    tensors = {t.name: t for t in reader.tensors}
    layers = [n for n in tensors if n.startswith("blk.") and not n.endswith("norm.weight")]
    assert len(layers) == len(weights) == 14
    for name in layers:
        tensor = tensors[name]
        assert tensor.tensor_type.name == TYPES[(bits, symmetric)], name
        hf = _hf_name(name)
        ours = weights[hf]
        read = torch.from_numpy(quants.dequantize(tensor.data, tensor.tensor_type).copy())
        if name.endswith("attn_q.weight"):
            read = _unpermute(read, 4)
        elif name.endswith("attn_k.weight"):
            read = _unpermute(read, 2)
        # the judged weights are the file's, to the bit
        assert torch.equal(read, judge[f"{hf}.weight"]), name
        # and the file's are our grid up to fp16's rounding of d (and m): 2**-11 relative
        exact = ours.dequantize()
        scale = ours.scales.repeat_interleave(32, dim=1)
        levels = 2**bits - 1
        assert (read - exact).abs().max() <= (scale * levels * 2**-10).max(), name
    assert tensors["token_embd.weight"].tensor_type.name == "Q8_0"
    assert tensors["output.weight"].tensor_type.name == "Q8_0"
    assert tensors["output_norm.weight"].tensor_type.name == "F32"
    assert tensors["blk.0.attn_norm.weight"].tensor_type.name == "F32"


def _field(reader: Any, key: str) -> Any:
    return reader.fields[key].contents()


def test_the_metadata_is_llamas_and_the_tokenizer_is_the_uploads(
    llama_dir: Path, tmp_path: Path
) -> None:
    from gguf import GGUFReader
    from transformers import AutoTokenizer

    _walk(llama_dir, tmp_path, bits=4, symmetric=False)
    reader = GGUFReader(str(tmp_path / "gguf" / GGUF_FILE))
    assert _field(reader, "general.architecture") == "llama"
    assert _field(reader, "general.file_type") == 3  # MOSTLY_Q4_1
    assert _field(reader, "llama.block_count") == 2
    assert _field(reader, "llama.embedding_length") == 64
    assert _field(reader, "llama.feed_forward_length") == 192
    assert _field(reader, "llama.attention.head_count") == 4
    assert _field(reader, "llama.attention.head_count_kv") == 2
    assert _field(reader, "llama.rope.dimension_count") == 16
    assert _field(reader, "tokenizer.ggml.model") == "gpt2"
    assert _field(reader, "tokenizer.ggml.pre") == "gpt-2"  # the test tokenizer: ByteLevel only
    original = AutoTokenizer.from_pretrained(str(llama_dir))
    tokens = _field(reader, "tokenizer.ggml.tokens")
    assert len(tokens) == len(original) == 49152
    assert _field(reader, "tokenizer.ggml.bos_token_id") == original.bos_token_id
    assert _field(reader, "tokenizer.ggml.eos_token_id") == original.eos_token_id
    assert _field(reader, "tokenizer.ggml.token_type")[original.eos_token_id] == 3  # CONTROL
    assert len(_field(reader, "tokenizer.ggml.merges")) > 40000
    text = "The quick brown fox jumps over 12 lazy dogs."
    loaded = AutoTokenizer.from_pretrained(str(tmp_path / "gguf"), gguf_file=GGUF_FILE)
    assert loaded(text)["input_ids"] == original(text)["input_ids"]


def _logits(model: Any) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=TOKENS).logits


@pytest.mark.parametrize("method", ["rtn", "awq"])  # awq: its scaled norms reach the file too
def test_transformers_loads_the_gguf_with_the_judged_logits(
    llama_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    from transformers import AutoModelForCausalLM

    _walk(llama_dir, tmp_path, bits=4, symmetric=False, method=method)
    judge = AutoModelForCausalLM.from_pretrained(str(tmp_path / "judge"), dtype=torch.float32)
    loaded = AutoModelForCausalLM.from_pretrained(
        str(tmp_path / "gguf"), gguf_file=GGUF_FILE, dtype=torch.float32
    )
    expected = _logits(judge.eval())
    difference = (_logits(loaded.eval()) - expected).abs().max().item()
    assert difference <= 1e-4, difference
    # Q and K rows left in Hugging Face's order: the test above would see it
    monkeypatch.setattr(gguf_sink, "permute_rows", lambda tensor, heads: tensor)
    _walk(llama_dir, tmp_path / "unpermuted", bits=4, symmetric=False)
    wrong = AutoModelForCausalLM.from_pretrained(
        str(tmp_path / "unpermuted" / "gguf"), gguf_file=GGUF_FILE, dtype=torch.float32
    )
    off = (_logits(wrong.eval()) - expected).abs().max().item()
    assert off > 1000 * max(difference, 1e-4), off


def test_permute_rows_is_llama_cpps_permutation() -> None:
    rows = torch.arange(16).reshape(16, 1)
    # two heads of 8 rows: each head's halves (0..3 | 4..7) interleaved
    expected = [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]
    assert permute_rows(rows, 2).flatten().tolist() == expected
    assert torch.equal(_unpermute(permute_rows(rows, 2), 2), rows)


def test_a_layer_off_the_32_block_or_another_architecture_is_refused(tmp_path: Path) -> None:
    weight = QuantizedWeight(
        codes=torch.zeros((4, 64), dtype=torch.uint8),
        scales=torch.ones((4, 1)),
        zero_points=torch.zeros((4, 1), dtype=torch.uint8),
        bits=4,
        group_size=64,
    )
    with pytest.raises(UnsupportedModelError, match="blocks hold 32"):
        gguf_sink.quantized_blocks("layer", weight)
    config = {"architectures": ["Qwen2ForCausalLM"], "num_attention_heads": 4}
    with pytest.raises(UnsupportedModelError, match="LlamaForCausalLM, not Qwen2ForCausalLM"):
        GgufSink(tmp_path, config=config, tokenizer_dir=tmp_path)


def _check(step: dict[str, Any], arch: str = "LlamaForCausalLM") -> None:
    recipe = Recipe.model_validate({"steps": [{"technique": "quantization", **step}]})
    inspection = {"kind": "causal_lm", "causal_lm": {"architecture": arch}}
    check_recipe_for_kind(recipe, "huggingface", Target(runtime="llama.cpp"), inspection=inspection)


def test_the_rules_take_what_a_gguf_file_holds() -> None:
    _check({"scheme": "int4_weight_only"})
    _check({"scheme": "int4_weight_only", "group_size": 32, "symmetric": True})
    _check({"scheme": "int8_weight_only"})
    with pytest.raises(InvalidRecipeError, match="not Qwen2ForCausalLM"):
        _check({"scheme": "int4_weight_only"}, arch="Qwen2ForCausalLM")
    with pytest.raises(InvalidRecipeError, match="blocks hold 32"):
        _check({"scheme": "int4_weight_only", "group_size": 64})
    with pytest.raises(InvalidRecipeError, match="Q8_0"):
        _check({"scheme": "int8_weight_only", "symmetric": False})
    with pytest.raises(InvalidRecipeError, match="embedding_bits"):
        _check({"scheme": "int4_weight_only", "embedding_bits": 4})
    with pytest.raises(InvalidRecipeError, match="one quantization step"):
        _check({"scheme": "int8_dynamic"})


def test_pre_tokenizer_names() -> None:
    name = gguf_sink.pre_tokenizer_name
    assert name({"type": "ByteLevel", "use_regex": True}) == "gpt-2"
    smollm = {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
        ],
    }
    assert name(smollm) == "smollm"
    assert name({"type": "Metaspace"}) == name(None) == "default"


LLAMA_SIMPLE = os.environ.get("MODELPRESS_LLAMA_SIMPLE") or shutil.which("llama-simple")


@pytest.mark.skipif(LLAMA_SIMPLE is None, reason="llama.cpp's llama-simple is not installed")
def test_llama_cpp_loads_the_file_and_generates(llama_dir: Path, tmp_path: Path) -> None:
    """Where llama.cpp is at hand (MODELPRESS_LLAMA_SIMPLE or llama-simple on PATH)."""
    _walk(llama_dir, tmp_path, bits=4, symmetric=False)
    prompt = "The quick brown fox"
    ran = subprocess.run(
        [str(LLAMA_SIMPLE), "-m", str(tmp_path / "gguf" / GGUF_FILE), "-n", "8", prompt],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "file type   = Q4_1" in ran.stderr
    assert ran.stdout.startswith(prompt) and len(ran.stdout) > len(prompt)
