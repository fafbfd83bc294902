"""Runtime ``llama.cpp``: one GGUF file (llama architecture) that llama.cpp serves as is, written
tensor by tensor with gguf-py (the llama.cpp project's own writer).

Our grids map onto llama.cpp's 32-weight blocks exactly, no re-rounding:
- int4 asymmetric, groups of 32 -> Q4_1: ``w = d * q + m`` with ``d = scale``,
  ``m = -scale * zero_point``;
- int4 symmetric -> Q4_0: ``w = d * (q - 8)``;
- int8 symmetric -> Q8_0: ``w = d * (q - 128)`` stored as signed bytes.
``d`` and ``m`` are stored in fp16, so the weights llama.cpp computes with differ from ours by
that rounding: ``GgufJudgeSink`` writes what the file dequantizes to (by gguf-py's reference
dequantizers), and that model is the one judged. The embedding table and output head (the
vocabulary tables, left in float by the walk) are stored Q8_0 by llama.cpp's reference round to
nearest, as its converter's ``--outtype q8_0`` does; norms stay F32.

Q and K rows are permuted as llama.cpp's ``convert_hf_to_gguf.py`` does (its rotary embedding
pairs adjacent dimensions, Hugging Face's pairs the two halves); transformers' GGUF loader undoes
it. Blocks are spilled to disk as they arrive, so the writer never holds the model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compressor.errors import UnsupportedModelError
from compressor.llm.ct_sink import DequantizedSink
from compressor.llm.quantized import QuantizedWeight

GGUF_FILE = "model.gguf"
BLOCK = 32  # weights per llama.cpp block (Q4_0, Q4_1, Q8_0)
ARCHITECTURES = ("LlamaForCausalLM",)

# llama.cpp picks its pre-tokenizer regex by name; keyed here by the steps of tokenizer.json's
# pre_tokenizer (convert_hf_to_gguf.py hashes a tokenization instead, which needs the model's
# exact tokenizer files). Anything else falls back to llama.cpp's "default".
LLAMA3_SPLIT = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
PRE_TOKENIZERS: dict[tuple[tuple[Any, Any], ...], str] = {
    (("ByteLevel", True),): "gpt-2",
    (("Digits", True), ("ByteLevel", True)): "smollm",  # SmolLM/SmolLM2
    (("Split", LLAMA3_SPLIT), ("ByteLevel", False)): "llama-bpe",  # Llama 3
}


def check_gguf_config(config: dict[str, Any]) -> None:
    """What the llama-architecture GGUF can express; anything else is refused, with why."""
    architecture = str((config.get("architectures") or ["?"])[0])
    if architecture not in ARCHITECTURES:
        raise UnsupportedModelError(
            f"the llama.cpp GGUF is written for {', '.join(ARCHITECTURES)}, not {architecture}"
        )
    if config.get("attention_bias") or config.get("mlp_bias"):
        raise UnsupportedModelError("llama.cpp's llama architecture here takes no Linear biases")
    if config.get("hidden_act", "silu") != "silu":
        raise UnsupportedModelError(f"llama.cpp's llama uses silu, not {config['hidden_act']}")
    rope = _rope(config)
    if rope.get("rope_type", "default") != "default":
        raise UnsupportedModelError(
            f"rope scaling {rope.get('rope_type')!r} is not written to GGUF here; plain RoPE only"
        )


def _rope(config: dict[str, Any]) -> dict[str, Any]:
    # transformers 5 writes rope_parameters; older configs rope_theta / rope_scaling
    rope = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    rope.setdefault("rope_theta", config.get("rope_theta", 10000.0))
    return rope


def permute_rows(tensor: torch.Tensor, heads: int) -> torch.Tensor:
    """convert_hf_to_gguf.py's LlamaModel.permute, on rows (an (out, ...) tensor)."""
    rows = tensor.shape[0]
    return (
        tensor.reshape(heads, 2, rows // heads // 2, *tensor.shape[1:])
        .swapaxes(1, 2)
        .reshape(tensor.shape)
    )


def _permuted(weight: QuantizedWeight, heads: int) -> QuantizedWeight:
    # A row permutation commutes with row-wise blocks: permute codes, scales and zero points.
    zero = weight.zero_points
    return QuantizedWeight(
        codes=permute_rows(weight.codes, heads),
        scales=permute_rows(weight.scales, heads),
        zero_points=None if zero is None else permute_rows(zero, heads),
        bits=weight.bits,
        group_size=weight.group_size,
    )


def quantized_blocks(name: str, weight: QuantizedWeight) -> tuple[Any, np.ndarray]:
    """The GGML type and its blocks, (out, in / 32 * block bytes) uint8, for one weight."""
    from gguf import GGMLQuantizationType

    if weight.group_size != BLOCK:
        raise UnsupportedModelError(
            f"llama.cpp's blocks hold {BLOCK} weights; this layer's groups are "
            f"{weight.group_size} wide (its input width must divide by {BLOCK})",
            layer=name,
        )
    out_features = weight.codes.shape[0]
    codes = weight.codes.numpy().reshape(-1, BLOCK)
    d = _f16_bytes(weight.scales)
    if weight.bits == 4:
        qs = codes[:, : BLOCK // 2] | (codes[:, BLOCK // 2 :] << np.uint8(4))
        if weight.zero_points is None:
            return GGMLQuantizationType.Q4_0, _rows(out_features, d, qs)
        m = _f16_bytes(-weight.scales * weight.zero_points.float())
        return GGMLQuantizationType.Q4_1, _rows(out_features, d, m, qs)
    if weight.bits == 8 and weight.zero_points is None:
        signed = (codes.astype(np.int16) - 128).astype(np.int8).view(np.uint8)
        return GGMLQuantizationType.Q8_0, _rows(out_features, d, signed)
    raise UnsupportedModelError(
        f"no llama.cpp type holds {weight.bits}-bit "
        f"{'symmetric' if weight.symmetric else 'asymmetric'} weights: int4 (Q4_1 or Q4_0) or "
        "symmetric int8 (Q8_0)",
        layer=name,
    )


def _f16_bytes(values: torch.Tensor) -> np.ndarray:
    return values.float().numpy().reshape(-1, 1).astype(np.float16).view(np.uint8)


def _rows(out_features: int, *parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts, axis=-1).reshape(out_features, -1)


def float_blocks(name: str, tensor: torch.Tensor) -> tuple[Any, np.ndarray]:
    """Norms F32; the vocabulary tables Q8_0 by llama.cpp's reference round to nearest."""
    from gguf import GGMLQuantizationType, quants

    values = tensor.detach().float().numpy()
    if values.ndim == 1:
        return GGMLQuantizationType.F32, values
    if values.ndim == 2 and values.shape[1] % BLOCK == 0:
        return GGMLQuantizationType.Q8_0, quants.quantize(values, GGMLQuantizationType.Q8_0)
    raise UnsupportedModelError(f"no GGUF layout for a {tuple(values.shape)} tensor", layer=name)


def dequantized(qtype: Any, blocks: np.ndarray) -> torch.Tensor:
    """What llama.cpp computes with, by gguf-py's reference dequantizers."""
    from gguf import quants

    return torch.from_numpy(np.ascontiguousarray(quants.dequantize(blocks, qtype)))


class GgufJudgeSink(DequantizedSink):
    """The float model the GGUF file dequantizes to, in Hugging Face layout (Q/K unpermuted):
    the model a llama.cpp candidate is judged by."""

    def add_quantized(
        self, name: str, weight: QuantizedWeight, bias: torch.Tensor | None = None
    ) -> None:
        if bias is not None:
            raise UnsupportedModelError("llama.cpp's llama takes no Linear biases", layer=name)
        self._put(f"{name}.weight", self._float(dequantized(*quantized_blocks(name, weight))))

    def add_float(self, name: str, tensor: torch.Tensor) -> None:
        values = dequantized(*float_blocks(name, tensor)).reshape(tensor.shape)
        self._put(name, self._float(values))


class GgufSink:
    """Writes ``out_dir / model.gguf``: llama hyperparameters from config.json, the tokenizer
    from ``tokenizer_dir``'s tokenizer.json, and the tensors under llama.cpp's names."""

    def __init__(self, out_dir: Path, *, config: dict[str, Any], tokenizer_dir: Path) -> None:
        from gguf import MODEL_ARCH, get_tensor_name_map

        check_gguf_config(config)
        self.out_dir = Path(out_dir)
        self.tokenizer_dir = tokenizer_dir
        self.heads = int(config["num_attention_heads"])
        self.kv_heads = int(config.get("num_key_value_heads") or self.heads)
        layers = int(config["num_hidden_layers"])
        self._names = get_tensor_name_map(MODEL_ARCH.LLAMA, layers)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._spill = Path(tempfile.mkdtemp(prefix="blocks-", dir=self.out_dir))
        self._tensors: list[tuple[str, Path, Any]] = []  # GGUF name, spilled blocks, type
        self._types: Counter[Any] = Counter()

    def _gguf_name(self, hf_name: str) -> str:
        name = self._names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise UnsupportedModelError(
                f"no llama.cpp tensor for {hf_name!r} (llama architecture)", layer=hf_name
            )
        return name

    def add_quantized(
        self, name: str, weight: QuantizedWeight, bias: torch.Tensor | None = None
    ) -> None:
        if bias is not None:
            raise UnsupportedModelError("llama.cpp's llama takes no Linear biases", layer=name)
        if name.endswith(".q_proj"):
            weight = _permuted(weight, self.heads)
        elif name.endswith(".k_proj"):
            weight = _permuted(weight, self.kv_heads)
        qtype, blocks = quantized_blocks(name, weight)
        self._types[qtype] += 1
        self._keep(self._gguf_name(f"{name}.weight"), qtype, blocks)

    def add_float(self, name: str, tensor: torch.Tensor) -> None:
        self._keep(self._gguf_name(name), *float_blocks(name, tensor))

    def _keep(self, gguf_name: str, qtype: Any, blocks: np.ndarray) -> None:
        path = self._spill / f"{len(self._tensors)}.npy"
        np.save(path, blocks)
        self._tensors.append((gguf_name, path, qtype))

    def close(self, config: dict[str, Any], *, tied_embeddings: bool) -> None:
        from gguf import GGUFWriter

        if not self._types:
            raise UnsupportedModelError("no Linear weight was quantized; nothing for GGUF")
        writer = GGUFWriter(self.out_dir / GGUF_FILE, "llama")
        self._hyperparameters(writer, config)
        self._tokenizer(writer, int(config["vocab_size"]))
        for gguf_name, path, qtype in self._tensors:
            if tied_embeddings and gguf_name == "output.weight":
                continue  # llama.cpp reads token_embd as the head when output is absent
            blocks = np.load(path, mmap_mode="r")  # read from disk as the writer streams it
            writer.add_tensor(gguf_name, blocks, raw_dtype=qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        shutil.rmtree(self._spill, ignore_errors=True)

    def _hyperparameters(self, writer: Any, config: dict[str, Any]) -> None:
        from gguf import GGMLQuantizationType, LlamaFileType

        hidden = int(config["hidden_size"])
        head_dim = int(config.get("head_dim") or hidden // self.heads)
        writer.add_name(str(config.get("_name_or_path") or "model").split("/")[-1] or "model")
        writer.add_block_count(int(config["num_hidden_layers"]))
        writer.add_context_length(int(config.get("max_position_embeddings") or 2048))
        writer.add_embedding_length(hidden)
        writer.add_feed_forward_length(int(config["intermediate_size"]))
        writer.add_head_count(self.heads)
        writer.add_head_count_kv(self.kv_heads)
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
        writer.add_rope_dimension_count(head_dim)
        writer.add_rope_freq_base(float(_rope(config)["rope_theta"]))
        writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
        writer.add_vocab_size(int(config["vocab_size"]))
        file_types = {
            GGMLQuantizationType.Q4_0: LlamaFileType.MOSTLY_Q4_0,
            GGMLQuantizationType.Q4_1: LlamaFileType.MOSTLY_Q4_1,
            GGMLQuantizationType.Q8_0: LlamaFileType.MOSTLY_Q8_0,
        }
        writer.add_file_type(file_types[self._types.most_common(1)[0][0]])
        writer.add_quantization_version(2)

    def _tokenizer(self, writer: Any, vocab_size: int) -> None:
        """gguf-py's BPE vocab and special-token reader, with the token types llama.cpp's
        converter sets (added special tokens CONTROL, other added tokens USER_DEFINED)."""
        from gguf import SpecialVocab, TokenType
        from gguf.vocab import BpeVocab

        tokenizer_json = self.tokenizer_dir / "tokenizer.json"
        if not tokenizer_json.exists():
            raise UnsupportedModelError("llama.cpp's GGUF needs the upload's tokenizer.json")
        try:
            vocab = BpeVocab(self.tokenizer_dir)
        except FileNotFoundError as error:  # gguf-py's way of saying "not a byte-level BPE"
            raise UnsupportedModelError(
                "the GGUF tokenizer is written for byte-level BPE tokenizers (GPT-2 style)"
            ) from error
        tokens: list[Any] = [text for text, _score, _type in vocab.all_tokens()]
        types = [token_type for _text, _score, token_type in vocab.all_tokens()]
        spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
        for added in spec.get("added_tokens", []):
            if added["id"] < len(types):
                types[added["id"]] = (
                    TokenType.CONTROL if added.get("special") else TokenType.USER_DEFINED
                )
        while len(tokens) < vocab_size:  # config's vocabulary padded past the tokenizer's
            tokens.append(f"[PAD{len(tokens)}]")
            types.append(TokenType.UNUSED)
        writer.add_tokenizer_model(BpeVocab.tokenizer_model)
        writer.add_tokenizer_pre(pre_tokenizer_name(spec.get("pre_tokenizer")))
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        SpecialVocab(self.tokenizer_dir, load_merges=True, n_vocab=len(tokens)).add_to_gguf(
            writer, quiet=True
        )


def pre_tokenizer_name(pre: dict[str, Any] | None) -> str:
    """llama.cpp's name for the pre-tokenizer of tokenizer.json (PRE_TOKENIZERS)."""
    if not pre:
        return "default"
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    key = tuple((s.get("type"), _distinguishing(s)) for s in steps)
    return PRE_TOKENIZERS.get(key, "default")


def _distinguishing(step: dict[str, Any]) -> Any:
    kind = step.get("type")
    if kind == "ByteLevel":
        return bool(step.get("use_regex", True))
    if kind == "Digits":
        return bool(step.get("individual_digits", False))
    if kind == "Split":
        pattern = step.get("pattern") or {}
        return pattern.get("Regex") or pattern.get("String")
    return None
