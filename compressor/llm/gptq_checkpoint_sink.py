"""A ``WeightSink`` that writes an AutoGPTQ-layout Hugging Face checkpoint.

ONNX Runtime GenAI's model builder reads such a checkpoint (``quantization_config.quant_method
= "gptq"``) and maps each packed weight to a ``MatMulNBits`` node keeping our codes, scales and
zero points: it unpacks, dequantizes and re-quantizes with the same scales, which returns the
same integers (the tests read the codes back out of the ONNX file and compare them).

Layout per quantized Linear ``name`` (AutoGPTQ's, which the builder's GPTQ loader expects):
``qweight`` int32 (in * bits / 32, out), codes packed along ``in``, lowest bits first;
``qzeros`` int32 (groups, out * bits / 32), the zero point minus one (AutoGPTQ's historical
offset, which the loader adds back) packed along ``out``; ``scales`` (groups, out) kept in
float32 so the CPU graph (float32 I/O) holds our scales bit for bit; ``g_idx`` int32 (in,).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from compressor.errors import UnsupportedModelError
from compressor.llm.quantized import QuantizedWeight
from compressor.llm.shards import ShardWriter

SUPPORTED_BITS = (2, 4, 8)  # what the builder's GPTQ loader unpacks
SHARD_BYTES = 512 * 1024 * 1024


def pack_along_rows(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack (rows, cols) small unsigned integers into int32 (rows * bits / 32, cols)."""
    per_word = 32 // bits
    rows, cols = values.shape
    if rows % per_word:
        raise ValueError(f"{rows} rows do not pack into int32 words of {per_word} values")
    grouped = values.to(torch.int32).reshape(rows // per_word, per_word, cols)
    packed = torch.zeros((rows // per_word, cols), dtype=torch.int32)
    for slot in range(per_word):
        packed |= grouped[:, slot, :] << (slot * bits)  # int32 wraps: the top slot sets the sign
    return packed


def gptq_tensors(name: str, weight: QuantizedWeight) -> dict[str, torch.Tensor]:
    """The four AutoGPTQ tensors of one Linear, named ``{name}.qweight`` etc."""
    bits, out_features, in_features = weight.bits, *weight.codes.shape
    if bits not in SUPPORTED_BITS:
        raise UnsupportedModelError(
            f"onnxruntime-genai takes {SUPPORTED_BITS}-bit weights, not {bits}-bit", layer=name
        )
    if out_features % (32 // bits) or in_features % (32 // bits):
        raise UnsupportedModelError(
            f"a {out_features}x{in_features} weight does not pack into int32 words at {bits} bits",
            layer=name,
        )
    zero = (
        torch.full_like(weight.scales, 2 ** (bits - 1), dtype=torch.int32)
        if weight.zero_points is None
        else weight.zero_points.to(torch.int32)
    )
    stored_zero = (zero - 1) & (2**bits - 1)  # the loader adds the 1 back, modulo 2**bits
    return {
        f"{name}.qweight": pack_along_rows(weight.codes.T.contiguous(), bits),
        # zero points (out, groups) pack along ``out``, stored (groups, out * bits / 32)
        f"{name}.qzeros": pack_along_rows(stored_zero, bits).T.contiguous(),
        f"{name}.scales": weight.scales.to(torch.float32).T.contiguous(),
        f"{name}.g_idx": torch.arange(in_features, dtype=torch.int32) // weight.group_size,
    }


class GptqCheckpointSink:
    """Writes shards as tensors arrive (never the whole model in memory), then ``config.json``
    with a GPTQ ``quantization_config``. Modules whose bits or group size differ from the most
    common ones go into GPTQModel's ``dynamic`` overrides, which the builder honours."""

    def __init__(self, out_dir: Path, *, shard_bytes: int = SHARD_BYTES) -> None:
        self.out_dir = Path(out_dir)
        self._shards = ShardWriter(self.out_dir, shard_bytes=shard_bytes)
        self._formats: dict[str, tuple[int, int]] = {}  # module name -> (bits, group_size)
        self._symmetric: set[bool] = set()

    def add_quantized(
        self, name: str, weight: QuantizedWeight, bias: torch.Tensor | None = None
    ) -> None:
        self._formats[name] = (weight.bits, weight.group_size)
        self._symmetric.add(weight.symmetric)
        for key, tensor in gptq_tensors(name, weight).items():
            self._put(key, tensor)
        if bias is not None:
            self._put(f"{name}.bias", bias)

    def add_float(self, name: str, tensor: torch.Tensor) -> None:
        self._put(name, tensor)

    def close(self, config: dict[str, Any], *, tied_embeddings: bool) -> None:
        if not self._formats:
            raise UnsupportedModelError("no Linear weight was quantized; nothing for GPTQ")
        self._shards.finish(single_file=False)
        written = dict(config)
        written["tie_word_embeddings"] = tied_embeddings
        written["quantization_config"] = self.quantization_config()
        written.pop("torch_dtype", None)
        written["dtype"] = "float32"
        (self.out_dir / "config.json").write_text(json.dumps(written, indent=2))

    def quantization_config(self) -> dict[str, Any]:
        (bits, group_size), _ = Counter(self._formats.values()).most_common(1)[0]
        # GPTQModel's per-module overrides: a regex matched at the start of each tensor name
        dynamic = {
            f"+:{_escape(name)}\\.": {"bits": b, "group_size": g}
            for name, (b, g) in self._formats.items()
            if (b, g) != (bits, group_size)
        }
        return {
            "quant_method": "gptq",
            "bits": bits,
            "group_size": group_size,
            "desc_act": False,
            "sym": self._symmetric == {True},
            "checkpoint_format": "gptq",
            "dynamic": dynamic,
        }

    def _put(self, key: str, tensor: torch.Tensor) -> None:
        self._shards.put(key, tensor)


def _escape(name: str) -> str:
    return name.replace(".", "\\.")
