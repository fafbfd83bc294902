from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Target(BaseModel):
    """Where the compressed model will run; latency is measured at these shapes on this runtime."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: Literal["cpu", "gpu", "auto"] = "cpu"
    runtime: Literal["onnxruntime", "torch", "onnxruntime-genai", "vllm", "llama.cpp"] = Field(
        "onnxruntime",
        description="onnxruntime: an ONNX graph; torch: the input's own format (Hugging Face "
        "safetensors). Causal LMs: onnxruntime-genai (a GenAI folder: ONNX with KV cache, "
        "int4 MatMulNBits, genai_config.json, tokenizer), vllm (a Hugging Face directory in "
        "the compressed-tensors format) or llama.cpp (one model.gguf: Q4_1, Q4_0 or Q8_0, "
        "tokenizer inside; Llama-architecture models).",
    )
    batch_size: int = Field(1, ge=1, le=1024)
    sequence_length: int = Field(128, ge=1, le=8192)
    export_onnx: bool = Field(
        False,
        description="Also put model.onnx (float32) in an artifact that stays in the input's "
        "format (runtime torch); ONNX-runtime artifacts are ONNX already.",
    )
    remeasure_baseline: bool = Field(
        False,
        description="Measure the original again even where the same model was measured on the "
        "same target, inputs and engine before (its stored figures are then replaced); by "
        "default those are reused, and the report's original.baseline says so.",
    )
