from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.ran_on_device import RanOnDevice
from ..models.ran_on_runtime import RanOnRuntime
from ..models.ran_on_timer import RanOnTimer
from ..models.ran_on_training_device import RanOnTrainingDevice

T = TypeVar("T", bound="RanOn")


@_attrs_define
class RanOn:
    """What actually ran the job, read from the processes that did (not from the target).

    Reports stored before it was recorded read back without it.

        Attributes:
            device (RanOnDevice): Where both models were measured.
            gpu_name (None | str): The GPU measured on; null on CPU.
            onnxruntime_version (None | str):
            ort_intra_op_threads (int | None): ONNX Runtime intra-op threads of the measured sessions; null on torch.
            provider (None | str): ONNX Runtime execution provider the measured sessions used (session.get_providers()[0]);
                null on the torch runtime.
            runtime (RanOnRuntime):
            timer (RanOnTimer):
            torch_threads (int): torch intra-op threads (steps, torch measurement).
            torch_version (str):
            training_device (RanOnTrainingDevice): Where torch-stage steps train (distillation, healing).
    """

    device: RanOnDevice
    gpu_name: None | str
    onnxruntime_version: None | str
    ort_intra_op_threads: int | None
    provider: None | str
    runtime: RanOnRuntime
    timer: RanOnTimer
    torch_threads: int
    torch_version: str
    training_device: RanOnTrainingDevice

    def to_dict(self) -> dict[str, Any]:
        device = self.device.value

        gpu_name: None | str
        gpu_name = self.gpu_name

        onnxruntime_version: None | str
        onnxruntime_version = self.onnxruntime_version

        ort_intra_op_threads: int | None
        ort_intra_op_threads = self.ort_intra_op_threads

        provider: None | str
        provider = self.provider

        runtime = self.runtime.value

        timer = self.timer.value

        torch_threads = self.torch_threads

        torch_version = self.torch_version

        training_device = self.training_device.value

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "device": device,
                "gpu_name": gpu_name,
                "onnxruntime_version": onnxruntime_version,
                "ort_intra_op_threads": ort_intra_op_threads,
                "provider": provider,
                "runtime": runtime,
                "timer": timer,
                "torch_threads": torch_threads,
                "torch_version": torch_version,
                "training_device": training_device,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        device = RanOnDevice(d.pop("device"))

        def _parse_gpu_name(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        gpu_name = _parse_gpu_name(d.pop("gpu_name"))

        def _parse_onnxruntime_version(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        onnxruntime_version = _parse_onnxruntime_version(d.pop("onnxruntime_version"))

        def _parse_ort_intra_op_threads(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        ort_intra_op_threads = _parse_ort_intra_op_threads(d.pop("ort_intra_op_threads"))

        def _parse_provider(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        provider = _parse_provider(d.pop("provider"))

        runtime = RanOnRuntime(d.pop("runtime"))

        timer = RanOnTimer(d.pop("timer"))

        torch_threads = d.pop("torch_threads")

        torch_version = d.pop("torch_version")

        training_device = RanOnTrainingDevice(d.pop("training_device"))

        ran_on = cls(
            device=device,
            gpu_name=gpu_name,
            onnxruntime_version=onnxruntime_version,
            ort_intra_op_threads=ort_intra_op_threads,
            provider=provider,
            runtime=runtime,
            timer=timer,
            torch_threads=torch_threads,
            torch_version=torch_version,
            training_device=training_device,
        )

        return ran_on
