"""The quantization config: one ``scheme`` per storage/compute format.

onnxruntime targets (the step acts on the exported graph):
  int8_dynamic      int8 MatMul weights per channel, activations quantized at run time,
                    embedding tables int8/int4; optional activation smoothing and float fallback;
                    on CPU, exact rewrites of padding masks and residual LayerNorms where ORT's
                    kernels run them faster (cpu_rewrites.py; also int8_static on transformers)
  int8_static       QDQ int8 with activation ranges calibrated on the job's inputs; on
                    convolutional graphs Conv/Gemm/MatMul and the ops between them, with the
                    calibration method, float layers and QDQ/QOperator form chosen by measurement
  int8_weight_only  MatMulNBits, 8-bit groups (GPU-oriented; runs on CPU too)
  int4_weight_only  MatMulNBits, 4-bit groups
  fp16              float16 with normalisation/softmax/reductions kept in float32
torch targets (the step casts the module, saved as HF safetensors):
  fp16, bf16
causal LMs for the LLM runtimes (vllm, onnxruntime-genai, llama.cpp; compressor/llm/):
  int4_weight_only, int8_weight_only  layer by layer, GPTQ, AWQ or round-to-nearest (``method``)
  int8_dynamic      vllm only, W8A8: SmoothQuant, then int8 weights per channel (GPTQ or
                    round-to-nearest); activations int8 per token at run time
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from compressor.errors import InvalidRecipeError
from compressor.techniques.base import StepConfig

Scheme = Literal[
    "int8_dynamic", "int8_static", "int8_weight_only", "int4_weight_only", "fp16", "bf16"
]
ONNX_ONLY = ("int8_dynamic", "int8_static", "int8_weight_only", "int4_weight_only")
WEIGHT_ONLY = ("int8_weight_only", "int4_weight_only")
INT8 = ("int8_dynamic", "int8_static")


class QuantizationConfig(StepConfig):
    technique: Literal["quantization"] = "quantization"
    scheme: Scheme = "int8_dynamic"
    per_channel: bool = True
    quantize_embeddings: bool = Field(
        True, description="int8_dynamic: store embedding tables quantized too (weight-only)."
    )
    embedding_bits: Literal[4, 8] = Field(
        8,
        description=(
            "int8_dynamic: bits of the largest (vocabulary) embedding table. A causal LM for "
            "onnxruntime-genai: bits of its LM head and embedding table (4: quantized with the "
            "layers' method, groups of 16; 8: the GenAI builder's round to nearest)."
        ),
    )
    small_table_bits: Literal[4, 8] = Field(
        8,
        description=(
            "int8_dynamic: bits of the other embedding tables (positions, token types). 4 "
            "stores them block-wise (GatherBlockQuantized), which saved 74 KB on "
            "all-MiniLM-L6-v2 but cost about 0.3 ms of its 15 ms at batch 1."
        ),
    )
    smoothing: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description=(
            "int8_dynamic/int8_static: SmoothQuant migration strength alpha; 0 disables. "
            "Moves activation outliers into the per-channel-quantized weights (outlier channels "
            "only shrink; none is amplified). The smoothed and the plain int8 graph are both "
            "built, and held-out calibration rows keep the one nearer the float output. A causal LM "
            "(int8_dynamic for vllm, W8A8): the largest alpha tried; each norm/linear feeding "
            "a group of linears keeps the alpha up to it, or none, whose int8 output lies "
            "nearest the float one on the calibration text."
        ),
    )
    float_fallback: int = Field(
        0,
        ge=0,
        le=256,
        description=(
            "int8_dynamic/int8_static: keep this many MatMuls (convolutional graphs: layers) "
            "in float, the ones with the largest measured int8 error on the calibration inputs. "
            "Unset on a convolutional graph with no bound set, the step keeps float only the "
            "layers that stay within 3% of the fully int8 graph's measured p50, the most "
            "faithful such choice (report: tradeoff)."
        ),
    )
    calibration_method: Literal["auto", "minmax", "percentile", "entropy"] = Field(
        "auto",
        description=(
            "int8_static: how activation ranges are set from the calibration inputs. auto: on "
            "convolutional graphs, each method is tried and the one with the best fidelity on "
            "a held-out slice of the calibration inputs is kept; minmax on MatMul-only graphs."
        ),
    )
    min_top1_agreement: float = Field(
        0.98,
        ge=0.0,
        le=1.0,
        description=(
            "int8_static on convolutional graphs, classifier outputs: the most sensitive layers "
            "stay float until top-1 agreement with the original on held-out calibration rows "
            "reaches this, even where that makes the model slower (the report's tradeoff table "
            "says what each point cost). Unset, 0.98 is reported against, not enforced."
        ),
    )
    max_output_error: float = Field(
        0.05,
        gt=0.0,
        le=1.0,
        description=(
            "int8_static on convolutional graphs, dense outputs (maps, embeddings): the bound "
            "on relative output error (L2) on held-out calibration rows, met with the fewest "
            "float layers. Unset, 0.05 is reported against, not enforced."
        ),
    )
    weight_dtype: Literal["auto", "int8", "uint8"] = Field(
        "auto",
        description=(
            "int8_dynamic/int8_static: storage type of the 8-bit weights. x86 CPUs without "
            "VNNI multiply uint8 x int8 with 16-bit saturation, which costs accuracy; uint8 "
            "weights use kernels that do not saturate. auto: int8 on the worker's CPU when it "
            "has VNNI, uint8 otherwise."
        ),
    )
    group_size: Literal[16, 32, 64, 128, 256] | None = Field(
        None, description="Weight-only schemes: weights per quantization group (default 128)."
    )
    method: Literal["auto", "gptq", "awq", "rtn"] = Field(
        "auto",
        description=(
            "Causal LMs (runtimes vllm, onnxruntime-genai, llama.cpp), weight-only schemes: how "
            "weights are rounded. gptq: GPTQ with act-order, layer by layer on the calibration "
            "text; awq: activation-aware scaling (each norm/linear feeding a group of linears "
            "scaled per channel, searched for the lowest output error), then round to nearest; "
            "rtn: round to nearest; auto: all three, keeping the one with the lowest perplexity "
            "on the held-out quarter of the calibration text. int8_dynamic on a causal LM "
            "(vllm, W8A8): rtn or gptq after SmoothQuant (auto tries both)."
        ),
    )
    symmetric: bool | None = Field(
        None,
        description=(
            "Causal LMs, weight-only schemes: a grid symmetric around zero (no zero points). "
            "Default: the runtime's (vllm symmetric, as its kernels and the compressed-tensors "
            "loader read it; onnxruntime-genai asymmetric, which loses less)."
        ),
    )
    exclude: tuple[str, ...] = Field(
        (), description="Node-name substrings to keep in float, e.g. sensitive layers."
    )
    keep_8bit: tuple[str, ...] = Field(
        (),
        max_length=64,
        description=(
            "A causal LM's int4_weight_only for vllm or llama.cpp: Linear layers kept at 8 bits "
            "(symmetric, same groups), named by suffix ('mlp.down_proj', 'self_attn.v_proj'), "
            "full name, or a layer's prefix ('model.layers.0'). Each name must match at least "
            "one Linear. llama.cpp's Q4_K_M keeps attention values and MLP down projections at "
            "higher precision for the same reason: they lose the most at 4 bits."
        ),
    )

    @model_validator(mode="after")
    def _scheme_params(self) -> QuantizationConfig:
        if self.group_size is not None and self.scheme not in WEIGHT_ONLY:
            raise ValueError(
                f"group_size applies to int8_weight_only/int4_weight_only, not {self.scheme}"
            )
        if self.keep_8bit and self.scheme != "int4_weight_only":
            raise ValueError(f"keep_8bit applies to int4_weight_only, not {self.scheme}")
        if self.float_fallback and self.scheme not in INT8:
            raise ValueError("float_fallback applies to int8_dynamic/int8_static only")
        if self.weight_dtype != "auto" and self.scheme not in INT8:
            raise ValueError("weight_dtype applies to int8_dynamic/int8_static only")
        return self

    @property
    def effective_group_size(self) -> int:
        return self.group_size or 128


def check_weight_only_graph(config: QuantizationConfig, weight_ops: dict[str, int]) -> None:
    """Weight-only schemes pack MatMul weights (MatMulNBits); ORT has no such kernel for
    convolutions, so a graph whose weights all sit in Conv layers is refused up front."""
    if config.scheme not in WEIGHT_ONLY or not weight_ops:
        return
    matmuls = weight_ops.get("MatMul", 0) + weight_ops.get("Gemm", 0)
    convs = weight_ops.get("Conv", 0) + weight_ops.get("ConvTranspose", 0)
    if matmuls == 0 and convs:
        raise InvalidRecipeError(
            f"{config.scheme} packs MatMul weights into MatMulNBits blocks, and this graph's "
            f"weights are in {convs} convolution layer(s), for which ONNX Runtime has no "
            "weight-only kernel: use scheme 'fp16' for a GPU target (half the bytes, fp16 "
            "convolutions run natively there) or 'int8_static' for a CPU target"
        )
