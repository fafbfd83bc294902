from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.baseline_note import BaselineNote
    from ..models.original_model_dtypes import OriginalModelDtypes


T = TypeVar("T", bound="OriginalModel")


@_attrs_define
class OriginalModel:
    """
    Attributes:
        architecture (None | str):
        batch_size (int):
        dtypes (OriginalModelDtypes):
        format_ (str):
        latency_p50_ms (float):
        latency_p95_ms (float):
        model_bytes (int):
        nonzero_parameters (int):
        parameters (int):
        peak_memory_bytes (int):
        runtime_format (str):
        throughput_per_s (float):
        upload_weight_bytes (int):
        baseline (BaselineNote | None | Unset):
    """

    architecture: None | str
    batch_size: int
    dtypes: OriginalModelDtypes
    format_: str
    latency_p50_ms: float
    latency_p95_ms: float
    model_bytes: int
    nonzero_parameters: int
    parameters: int
    peak_memory_bytes: int
    runtime_format: str
    throughput_per_s: float
    upload_weight_bytes: int
    baseline: BaselineNote | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.baseline_note import BaselineNote  # noqa: PLC0415

        architecture: None | str
        architecture = self.architecture

        batch_size = self.batch_size

        dtypes = self.dtypes.to_dict()

        format_ = self.format_

        latency_p50_ms = self.latency_p50_ms

        latency_p95_ms = self.latency_p95_ms

        model_bytes = self.model_bytes

        nonzero_parameters = self.nonzero_parameters

        parameters = self.parameters

        peak_memory_bytes = self.peak_memory_bytes

        runtime_format = self.runtime_format

        throughput_per_s = self.throughput_per_s

        upload_weight_bytes = self.upload_weight_bytes

        baseline: dict[str, Any] | None | Unset
        if isinstance(self.baseline, Unset):
            baseline = UNSET
        elif isinstance(self.baseline, BaselineNote):
            baseline = self.baseline.to_dict()
        else:
            baseline = self.baseline

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "architecture": architecture,
                "batch_size": batch_size,
                "dtypes": dtypes,
                "format": format_,
                "latency_p50_ms": latency_p50_ms,
                "latency_p95_ms": latency_p95_ms,
                "model_bytes": model_bytes,
                "nonzero_parameters": nonzero_parameters,
                "parameters": parameters,
                "peak_memory_bytes": peak_memory_bytes,
                "runtime_format": runtime_format,
                "throughput_per_s": throughput_per_s,
                "upload_weight_bytes": upload_weight_bytes,
            }
        )
        if baseline is not UNSET:
            field_dict["baseline"] = baseline

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.baseline_note import BaselineNote  # noqa: PLC0415
        from ..models.original_model_dtypes import OriginalModelDtypes  # noqa: PLC0415

        d = dict(src_dict)

        def _parse_architecture(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        architecture = _parse_architecture(d.pop("architecture"))

        batch_size = d.pop("batch_size")

        dtypes = OriginalModelDtypes.from_dict(d.pop("dtypes"))

        format_ = d.pop("format")

        latency_p50_ms = d.pop("latency_p50_ms")

        latency_p95_ms = d.pop("latency_p95_ms")

        model_bytes = d.pop("model_bytes")

        nonzero_parameters = d.pop("nonzero_parameters")

        parameters = d.pop("parameters")

        peak_memory_bytes = d.pop("peak_memory_bytes")

        runtime_format = d.pop("runtime_format")

        throughput_per_s = d.pop("throughput_per_s")

        upload_weight_bytes = d.pop("upload_weight_bytes")

        def _parse_baseline(data: object) -> BaselineNote | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                baseline_type_0 = BaselineNote.from_dict(data)

                return baseline_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(BaselineNote | None | Unset, data)

        baseline = _parse_baseline(d.pop("baseline", UNSET))

        original_model = cls(
            architecture=architecture,
            batch_size=batch_size,
            dtypes=dtypes,
            format_=format_,
            latency_p50_ms=latency_p50_ms,
            latency_p95_ms=latency_p95_ms,
            model_bytes=model_bytes,
            nonzero_parameters=nonzero_parameters,
            parameters=parameters,
            peak_memory_bytes=peak_memory_bytes,
            runtime_format=runtime_format,
            throughput_per_s=throughput_per_s,
            upload_weight_bytes=upload_weight_bytes,
            baseline=baseline,
        )

        return original_model
