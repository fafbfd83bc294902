from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="JobFigures")


@_attrs_define
class JobFigures:
    """Headline figures of a succeeded job, as its report measured them.

    Attributes:
        accuracy_drop (float | None):
        compressed_bytes (int | None):
        compression_ratio (float | None):
        device (None | str):
        fidelity_mean (float | None):
        fidelity_metric (None | str):
        fidelity_min (float | None):
        latency_p50_ms (float | None):
        original_bytes (int | None):
        original_latency_p50_ms (float | None):
        provider (None | str):
        speedup (float | None):
        top1_agreement (float | None):
    """

    accuracy_drop: float | None
    compressed_bytes: int | None
    compression_ratio: float | None
    device: None | str
    fidelity_mean: float | None
    fidelity_metric: None | str
    fidelity_min: float | None
    latency_p50_ms: float | None
    original_bytes: int | None
    original_latency_p50_ms: float | None
    provider: None | str
    speedup: float | None
    top1_agreement: float | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        accuracy_drop: float | None
        accuracy_drop = self.accuracy_drop

        compressed_bytes: int | None
        compressed_bytes = self.compressed_bytes

        compression_ratio: float | None
        compression_ratio = self.compression_ratio

        device: None | str
        device = self.device

        fidelity_mean: float | None
        fidelity_mean = self.fidelity_mean

        fidelity_metric: None | str
        fidelity_metric = self.fidelity_metric

        fidelity_min: float | None
        fidelity_min = self.fidelity_min

        latency_p50_ms: float | None
        latency_p50_ms = self.latency_p50_ms

        original_bytes: int | None
        original_bytes = self.original_bytes

        original_latency_p50_ms: float | None
        original_latency_p50_ms = self.original_latency_p50_ms

        provider: None | str
        provider = self.provider

        speedup: float | None
        speedup = self.speedup

        top1_agreement: float | None
        top1_agreement = self.top1_agreement

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "accuracy_drop": accuracy_drop,
                "compressed_bytes": compressed_bytes,
                "compression_ratio": compression_ratio,
                "device": device,
                "fidelity_mean": fidelity_mean,
                "fidelity_metric": fidelity_metric,
                "fidelity_min": fidelity_min,
                "latency_p50_ms": latency_p50_ms,
                "original_bytes": original_bytes,
                "original_latency_p50_ms": original_latency_p50_ms,
                "provider": provider,
                "speedup": speedup,
                "top1_agreement": top1_agreement,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_accuracy_drop(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        accuracy_drop = _parse_accuracy_drop(d.pop("accuracy_drop"))

        def _parse_compressed_bytes(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        compressed_bytes = _parse_compressed_bytes(d.pop("compressed_bytes"))

        def _parse_compression_ratio(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        compression_ratio = _parse_compression_ratio(d.pop("compression_ratio"))

        def _parse_device(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        device = _parse_device(d.pop("device"))

        def _parse_fidelity_mean(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        fidelity_mean = _parse_fidelity_mean(d.pop("fidelity_mean"))

        def _parse_fidelity_metric(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        fidelity_metric = _parse_fidelity_metric(d.pop("fidelity_metric"))

        def _parse_fidelity_min(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        fidelity_min = _parse_fidelity_min(d.pop("fidelity_min"))

        def _parse_latency_p50_ms(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        latency_p50_ms = _parse_latency_p50_ms(d.pop("latency_p50_ms"))

        def _parse_original_bytes(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        original_bytes = _parse_original_bytes(d.pop("original_bytes"))

        def _parse_original_latency_p50_ms(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        original_latency_p50_ms = _parse_original_latency_p50_ms(d.pop("original_latency_p50_ms"))

        def _parse_provider(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        provider = _parse_provider(d.pop("provider"))

        def _parse_speedup(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        speedup = _parse_speedup(d.pop("speedup"))

        def _parse_top1_agreement(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        top1_agreement = _parse_top1_agreement(d.pop("top1_agreement"))

        job_figures = cls(
            accuracy_drop=accuracy_drop,
            compressed_bytes=compressed_bytes,
            compression_ratio=compression_ratio,
            device=device,
            fidelity_mean=fidelity_mean,
            fidelity_metric=fidelity_metric,
            fidelity_min=fidelity_min,
            latency_p50_ms=latency_p50_ms,
            original_bytes=original_bytes,
            original_latency_p50_ms=original_latency_p50_ms,
            provider=provider,
            speedup=speedup,
            top1_agreement=top1_agreement,
        )

        job_figures.additional_properties = d
        return job_figures

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
