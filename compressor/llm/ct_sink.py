"""Runtime ``vllm``: a Hugging Face directory in the compressed-tensors ``pack-quantized`` format,
written tensor by tensor with the compressed-tensors library's own packing and config classes.

transformers loads it with compressed-tensors installed (decompressing on a CPU); vLLM serves it
with its int4/int8 weight-only kernels on a GPU. The embedding table and lm_head stay in 16-bit
float: vLLM's compressed-tensors path quantizes Linear layers, not the vocabulary tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from compressor.llm.quantized import QuantizedWeight
from compressor.llm.shards import ShardWriter

SHARD_BYTES = 1 << 30


class CompressedTensorsSink:
    """``dynamic_activations``: W8A8, the ``int-quantized`` format: int8 weights per output
    channel, and each token's activations quantized to int8 at run time (vLLM's int8 GEMM; the
    compressed-tensors forward wrapper simulates it in transformers)."""

    def __init__(
        self,
        out_dir: Path,
        *,
        shard_bytes: int = SHARD_BYTES,
        dynamic_activations: bool = False,
        sparsity: str | None = None,
    ) -> None:
        self.out_dir = out_dir
        self.dynamic_activations = dynamic_activations
        self.sparsity = sparsity  # "2:4": the linears are stored dense with that pattern
        self._shards = ShardWriter(out_dir, shard_bytes=shard_bytes)
        self._schemes: dict[tuple[int, int, bool], list[str]] = {}
        self._float_dtype: torch.dtype | None = None

    def _float(self, tensor: torch.Tensor) -> torch.Tensor:
        # bf16 stays bf16; anything else is stored in fp16 (half the bytes of fp32).
        dtype = torch.bfloat16 if tensor.dtype == torch.bfloat16 else torch.float16
        self._float_dtype = self._float_dtype or dtype
        return tensor.detach().to(dtype).contiguous()

    def add_quantized(
        self, name: str, weight: QuantizedWeight, bias: torch.Tensor | None = None
    ) -> None:
        from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32

        offset = 2 ** (weight.bits - 1)
        signed = (weight.codes.to(torch.int32) - offset).to(torch.int8)
        if self.dynamic_activations:
            if weight.bits != 8 or not weight.symmetric or weight.scales.shape[1] != 1:
                raise ValueError("W8A8 weights are int8, symmetric, one scale per channel")
            self._put(f"{name}.weight", signed)
        else:
            self._put(f"{name}.weight_packed", pack_to_int32(signed, weight.bits))
            self._put(f"{name}.weight_shape", torch.tensor(list(weight.codes.shape)))
        self._put(f"{name}.weight_scale", self._float(weight.scales))
        if weight.zero_points is not None:
            zero = (weight.zero_points.to(torch.int32) - offset).to(torch.int8)
            self._put(f"{name}.weight_zero_point", pack_to_int32(zero, weight.bits, packed_dim=0))
        if bias is not None:
            self._put(f"{name}.bias", self._float(bias))
        # W8A8: one scale per output channel, whatever the width
        key = (weight.bits, 0 if self.dynamic_activations else weight.group_size, weight.symmetric)
        self._schemes.setdefault(key, []).append(name)

    def add_float(self, name: str, tensor: torch.Tensor) -> None:
        self._put(name, self._float(tensor))

    def _put(self, key: str, tensor: torch.Tensor) -> None:
        self._shards.put(key, tensor)

    def close(self, config: dict[str, Any], *, tied_embeddings: bool) -> None:
        self._shards.finish(single_file=True)
        config = dict(config)
        config["tie_word_embeddings"] = tied_embeddings
        config["torch_dtype"] = str(self._float_dtype or torch.float16).removeprefix("torch.")
        if self._schemes:
            config["quantization_config"] = self.quantization_config()
        elif self.sparsity is not None:
            config["quantization_config"] = self.sparsity_config()
        (self.out_dir / "config.json").write_text(json.dumps(config, indent=2))

    def sparsity_config(self) -> dict[str, Any]:
        """Sparsity alone, stored dense: transformers loads the weights as they are, and vLLM
        reads the structure (its 2:4 kernels take 16-bit weights with this pattern)."""
        from compressed_tensors.config import SparsityCompressionConfig

        sparsity = SparsityCompressionConfig.load_from_registry(
            "dense", sparsity_structure=self.sparsity, targets=["Linear"], ignore=["lm_head"]
        )
        return {
            "quant_method": "compressed-tensors",
            "format": "dense",
            "sparsity_config": sparsity.model_dump(
                mode="json",
                exclude_none=True,
                exclude={"registry_requires_subclass", "global_sparsity"},
            ),
        }

    def quantization_config(self) -> dict[str, Any]:
        from compressed_tensors.quantization import (
            QuantizationArgs,
            QuantizationConfig,
            QuantizationScheme,
        )

        single = len(self._schemes) == 1
        per_token = QuantizationArgs(
            num_bits=8, type="int", symmetric=True, dynamic=True, strategy="token"
        )
        groups = {
            f"group_{i}": QuantizationScheme(
                targets=["Linear"] if single else [f"re:^{n.replace('.', '[.]')}$" for n in names],
                weights=QuantizationArgs(
                    num_bits=bits,
                    type="int",
                    symmetric=symmetric,
                    **(
                        {"strategy": "channel"}
                        if self.dynamic_activations
                        else {"strategy": "group", "group_size": group_size}
                    ),
                ),
                input_activations=per_token if self.dynamic_activations else None,
            )
            for i, ((bits, group_size, symmetric), names) in enumerate(
                sorted(self._schemes.items())
            )
        }
        config = QuantizationConfig(
            config_groups=groups,
            format="int-quantized" if self.dynamic_activations else "pack-quantized",
            quantization_status="compressed",
            ignore=["lm_head"],
        )
        return config.model_dump(mode="json", exclude_none=True)


class DequantizedSink(CompressedTensorsSink):
    """The quantized model as plain float weights (each Linear on its grid, dequantized): what
    judges a candidate whose own format transformers cannot load (GenAI's asymmetric grid).
    ``dtype``: the one the candidate is judged in, so loading it converts nothing."""

    def __init__(self, out_dir: Path, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(out_dir)
        self.dtype = dtype

    def _float(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach().to(self.dtype).contiguous()

    def add_quantized(
        self, name: str, weight: QuantizedWeight, bias: torch.Tensor | None = None
    ) -> None:
        self._put(f"{name}.weight", self._float(weight.dequantize()))
        if bias is not None:
            self._put(f"{name}.bias", self._float(bias))

    def close(self, config: dict[str, Any], *, tied_embeddings: bool) -> None:
        super().close(config, tied_embeddings=tied_embeddings)
        written = json.loads((self.out_dir / "config.json").read_text())
        written.pop("quantization_config", None)
        written["torch_dtype"] = str(self.dtype).removeprefix("torch.")
        (self.out_dir / "config.json").write_text(json.dumps(written, indent=2))
