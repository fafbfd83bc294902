from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.target_device import TargetDevice
from ..models.target_runtime import TargetRuntime
from ..types import UNSET, Unset

T = TypeVar("T", bound="Target")


@_attrs_define
class Target:
    """Where the compressed model will run; latency is measured at these shapes on this runtime.

    Attributes:
        batch_size (int | Unset):  Default: 1.
        device (TargetDevice | Unset):  Default: TargetDevice.CPU.
        export_onnx (bool | Unset): Also put model.onnx (float32) in an artifact that stays in the input's format
            (runtime torch); ONNX-runtime artifacts are ONNX already. Default: False.
        remeasure_baseline (bool | Unset): Measure the original again even where the same model was measured on the same
            target, inputs and engine before (its stored figures are then replaced); by default those are reused, and the
            report's original.baseline says so. Default: False.
        runtime (TargetRuntime | Unset): onnxruntime: an ONNX graph; torch: the input's own format (Hugging Face
            safetensors). Causal LMs: onnxruntime-genai (a GenAI folder: ONNX with KV cache, int4 MatMulNBits,
            genai_config.json, tokenizer), vllm (a Hugging Face directory in the compressed-tensors format) or llama.cpp
            (one model.gguf: Q4_1, Q4_0 or Q8_0, tokenizer inside; Llama-architecture models). Default:
            TargetRuntime.ONNXRUNTIME.
        sequence_length (int | Unset):  Default: 128.
    """

    batch_size: int | Unset = 1
    device: TargetDevice | Unset = TargetDevice.CPU
    export_onnx: bool | Unset = False
    remeasure_baseline: bool | Unset = False
    runtime: TargetRuntime | Unset = TargetRuntime.ONNXRUNTIME
    sequence_length: int | Unset = 128

    def to_dict(self) -> dict[str, Any]:
        batch_size = self.batch_size

        device: str | Unset = UNSET
        if not isinstance(self.device, Unset):
            device = self.device.value

        export_onnx = self.export_onnx

        remeasure_baseline = self.remeasure_baseline

        runtime: str | Unset = UNSET
        if not isinstance(self.runtime, Unset):
            runtime = self.runtime.value

        sequence_length = self.sequence_length

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if batch_size is not UNSET:
            field_dict["batch_size"] = batch_size
        if device is not UNSET:
            field_dict["device"] = device
        if export_onnx is not UNSET:
            field_dict["export_onnx"] = export_onnx
        if remeasure_baseline is not UNSET:
            field_dict["remeasure_baseline"] = remeasure_baseline
        if runtime is not UNSET:
            field_dict["runtime"] = runtime
        if sequence_length is not UNSET:
            field_dict["sequence_length"] = sequence_length

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        batch_size = d.pop("batch_size", UNSET)

        _device = d.pop("device", UNSET)
        device: TargetDevice | Unset
        if isinstance(_device, Unset):
            device = UNSET
        else:
            device = TargetDevice(_device)

        export_onnx = d.pop("export_onnx", UNSET)

        remeasure_baseline = d.pop("remeasure_baseline", UNSET)

        _runtime = d.pop("runtime", UNSET)
        runtime: TargetRuntime | Unset
        if isinstance(_runtime, Unset):
            runtime = UNSET
        else:
            runtime = TargetRuntime(_runtime)

        sequence_length = d.pop("sequence_length", UNSET)

        target = cls(
            batch_size=batch_size,
            device=device,
            export_onnx=export_onnx,
            remeasure_baseline=remeasure_baseline,
            runtime=runtime,
            sequence_length=sequence_length,
        )

        return target
