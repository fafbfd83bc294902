"""What a weight-only quantizer of a causal LM hands to the format writers.

The layer walker (``compressor/llm/layerwise.py``) quantizes one decoder layer at a time and passes
each tensor to a ``WeightSink`` as soon as it is final, so no format writer ever holds the whole
model: the compressed-tensors writer (runtime ``vllm``) and the GPTQ-checkpoint writer that feeds
ONNX Runtime GenAI's model builder (runtime ``onnxruntime-genai``) are two sinks of one walk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch


@dataclass(frozen=True)
class QuantizedWeight:
    """One Linear's weight on an integer grid, in the layout of ``torch.nn.Linear`` (out, in).

    ``codes``: unsigned integers in [0, 2**bits), uint8, shape (out, in).
    ``scales``: float32, shape (out, in // group_size).
    ``zero_points``: the code that stands for 0.0, uint8 (out, in // group_size), or None when
    the grid is symmetric (zero point 2**(bits-1)).
    Dequantized: ``(codes - zero) * scale`` group-wise along ``in``.
    """

    codes: torch.Tensor
    scales: torch.Tensor
    zero_points: torch.Tensor | None
    bits: int
    group_size: int

    @property
    def symmetric(self) -> bool:
        return self.zero_points is None

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        out_features, in_features = self.codes.shape
        groups = in_features // self.group_size
        zero = (
            torch.full_like(self.scales, 2 ** (self.bits - 1))
            if self.zero_points is None
            else self.zero_points.to(torch.float32)
        )
        codes = self.codes.to(torch.float32).reshape(out_features, groups, self.group_size)
        weight = (codes - zero[..., None]) * self.scales.to(torch.float32)[..., None]
        return weight.reshape(out_features, in_features).to(dtype)


class WeightSink(Protocol):
    """Receives the model tensor by tensor, under its Hugging Face state-dict name."""

    def add_quantized(
        self, name: str, weight: QuantizedWeight, bias: torch.Tensor | None = None
    ) -> None:
        """``name`` is the module's name (``model.layers.3.self_attn.q_proj``), without
        ``.weight``."""

    def add_float(self, name: str, tensor: torch.Tensor) -> None:
        """Any other tensor (norms, embeddings kept in float, biases), full state-dict name."""

    def close(self, config: dict[str, Any], *, tied_embeddings: bool) -> None:
        """Write what remains (index, config.json with the format's quantization section)."""
