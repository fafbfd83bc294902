"""The quantization step: checks a scheme against the target, then runs it.

Each scheme is looked up in ``_ONNX_RUNS`` (the one place a scheme picks its code); torch
targets cast the module instead (fp16, bf16).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch

from compressor.errors import InvalidRecipeError
from compressor.target import Target
from compressor.techniques.base import ModelState, Stage, StepContext, register
from compressor.techniques.quantization import onnx_schemes
from compressor.techniques.quantization.config import ONNX_ONLY, QuantizationConfig, Scheme
from compressor.techniques.quantization.torch_cast import cast_module

_Run = Callable[[QuantizationConfig, Path, Path, StepContext], dict[str, Any]]

_ONNX_RUNS: dict[Scheme, _Run] = {
    "int8_dynamic": lambda config, source, out, ctx: onnx_schemes.int8_dynamic(
        config, source=source, out=out, calibration=ctx.calibration
    ),
    "int8_static": lambda config, source, out, ctx: onnx_schemes.int8_static(
        config,
        source=source,
        out=out,
        calibration=ctx.calibration,
        batch_size=ctx.target.batch_size,
        cpu=ctx.target.device == "cpu",
    ),
    "int8_weight_only": lambda config, source, out, _ctx: onnx_schemes.weight_only(
        config, bits=8, source=source, out=out
    ),
    "int4_weight_only": lambda config, source, out, _ctx: onnx_schemes.weight_only(
        config, bits=4, source=source, out=out
    ),
    "fp16": lambda config, source, out, _ctx: onnx_schemes.fp16(config, source=source, out=out),
}
_TORCH_DTYPES: dict[Scheme, torch.dtype] = {"fp16": torch.float16, "bf16": torch.bfloat16}


@register("quantization")
class QuantizationHandler:
    stage: ClassVar[Stage] = Stage.ONNX

    def check(self, config: QuantizationConfig, target: Target) -> None:
        scheme = config.scheme
        if target.runtime == "torch" and scheme in ONNX_ONLY:
            raise InvalidRecipeError(
                f"{scheme} produces an ONNX Runtime model: set target.runtime to "
                "'onnxruntime' (transformers has no standard, loadable safetensors format for "
                "torch int8/int4 weights without extra libraries)"
            )
        if scheme == "int8_dynamic" and target.device == "gpu":
            raise InvalidRecipeError(
                "int8_dynamic runs on CPU only (ORT has no GPU MatMulInteger kernels); use "
                "device 'cpu', or int8_weight_only / int4_weight_only / fp16 for GPU"
            )
        if scheme == "bf16" and target.runtime == "onnxruntime":
            raise InvalidRecipeError(
                "bf16 is not runnable on ONNX Runtime's CPU provider (no bfloat16 MatMul "
                "kernels); use runtime 'torch' for bf16, or scheme 'fp16'"
            )

    def apply(
        self, config: QuantizationConfig, state: ModelState, ctx: StepContext
    ) -> dict[str, Any]:
        scheme = config.scheme
        if ctx.target.runtime == "torch":
            return {"scheme": scheme, **cast_module(state.module, dtype=_TORCH_DTYPES[scheme])}
        assert state.onnx_path is not None
        source = Path(state.onnx_path)
        out = Path(state.workdir) / f"quantized_{scheme}.onnx"
        details = _ONNX_RUNS[scheme](config, source, out, ctx)
        state.onnx_path = out
        return {"scheme": scheme, **details}
