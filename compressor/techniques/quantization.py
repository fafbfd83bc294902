"""Quantization. int8_dynamic on onnxruntime: per-channel int8 MatMul weights and int8 embedding tables."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar, Literal

import onnx
from pydantic import Field

from compressor.errors import InvalidRecipeError, UnsupportedModelError
from compressor.target import Target
from compressor.techniques.base import ModelState, Stage, StepConfig, StepContext, register


class QuantizationConfig(StepConfig):
    technique: Literal["quantization"] = "quantization"
    scheme: Literal["int8_dynamic"] = "int8_dynamic"
    per_channel: bool = True
    quantize_embeddings: bool = Field(
        True, description="Store embedding tables as int8 too (weight-only)."
    )
    exclude: tuple[str, ...] = Field(
        (), description="Node-name substrings to keep in float, e.g. sensitive layers."
    )


@register("quantization")
class QuantizationHandler:
    stage: ClassVar[Stage] = Stage.ONNX

    def check(self, config: QuantizationConfig, target: Target) -> None:
        if config.scheme == "int8_dynamic" and target.runtime != "onnxruntime":
            raise InvalidRecipeError(
                "int8_dynamic produces an ONNX Runtime model: set target.runtime to "
                "'onnxruntime' (a torch dynamic-int8 module cannot be saved in a form "
                "transformers loads)"
            )
        if config.scheme == "int8_dynamic" and target.device == "gpu":
            raise InvalidRecipeError("int8_dynamic runs on CPU only; use device 'cpu'")

    def apply(
        self, config: QuantizationConfig, state: ModelState, ctx: StepContext
    ) -> dict[str, Any]:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        assert state.onnx_path is not None
        graph = onnx.load(str(state.onnx_path)).graph
        ops = ["MatMul", "Gemm"] + (["Gather"] if config.quantize_embeddings else [])
        candidates = [n.name for n in graph.node if n.op_type in ops]
        excluded = [n for n in candidates if any(s in n for s in config.exclude)]
        if len(candidates) == len(excluded):
            raise UnsupportedModelError(
                "int8_dynamic found no MatMul/Gemm/Gather layer to quantize"
                + (" outside the excluded ones" if excluded else "")
            )
        out = Path(state.workdir) / "quantized.onnx"
        logging.getLogger("root").setLevel(logging.ERROR)
        quantize_dynamic(
            str(state.onnx_path),
            str(out),
            per_channel=config.per_channel,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=ops,
            nodes_to_exclude=excluded,
        )
        quantized = onnx.load(str(out)).graph
        done = sorted({n.name.removesuffix("_quant") for n in quantized.node if "Integer" in n.op_type or n.op_type == "DequantizeLinear"})
        state.onnx_path = out
        return {
            "scheme": config.scheme,
            "per_channel": config.per_channel,
            "layers_considered": len(candidates),
            "layers_kept_in_float": {name: "excluded by the recipe" for name in excluded},
            "quantized_nodes": len(done),
        }
