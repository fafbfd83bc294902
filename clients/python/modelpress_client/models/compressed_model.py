from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.compressed_model_dtypes import CompressedModelDtypes
    from ..models.packed_archive import PackedArchive


T = TypeVar("T", bound="CompressedModel")


@_attrs_define
class CompressedModel:
    """
    Attributes:
        archive (None | PackedArchive):
        batch_size (int):
        dtypes (CompressedModelDtypes):
        format_ (str):
        latency_p50_ms (float):
        latency_p95_ms (float):
        model_bytes (int):
        nonzero_parameters (int):
        parameters (int):
        peak_memory_bytes (int):
        throughput_per_s (float):
    """

    archive: None | PackedArchive
    batch_size: int
    dtypes: CompressedModelDtypes
    format_: str
    latency_p50_ms: float
    latency_p95_ms: float
    model_bytes: int
    nonzero_parameters: int
    parameters: int
    peak_memory_bytes: int
    throughput_per_s: float

    def to_dict(self) -> dict[str, Any]:
        from ..models.packed_archive import PackedArchive  # noqa: PLC0415

        archive: dict[str, Any] | None
        if isinstance(self.archive, PackedArchive):
            archive = self.archive.to_dict()
        else:
            archive = self.archive

        batch_size = self.batch_size

        dtypes = self.dtypes.to_dict()

        format_ = self.format_

        latency_p50_ms = self.latency_p50_ms

        latency_p95_ms = self.latency_p95_ms

        model_bytes = self.model_bytes

        nonzero_parameters = self.nonzero_parameters

        parameters = self.parameters

        peak_memory_bytes = self.peak_memory_bytes

        throughput_per_s = self.throughput_per_s

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "archive": archive,
                "batch_size": batch_size,
                "dtypes": dtypes,
                "format": format_,
                "latency_p50_ms": latency_p50_ms,
                "latency_p95_ms": latency_p95_ms,
                "model_bytes": model_bytes,
                "nonzero_parameters": nonzero_parameters,
                "parameters": parameters,
                "peak_memory_bytes": peak_memory_bytes,
                "throughput_per_s": throughput_per_s,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.compressed_model_dtypes import CompressedModelDtypes  # noqa: PLC0415
        from ..models.packed_archive import PackedArchive  # noqa: PLC0415

        d = dict(src_dict)

        def _parse_archive(data: object) -> None | PackedArchive:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                archive_type_0 = PackedArchive.from_dict(data)

                return archive_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | PackedArchive, data)

        archive = _parse_archive(d.pop("archive"))

        batch_size = d.pop("batch_size")

        dtypes = CompressedModelDtypes.from_dict(d.pop("dtypes"))

        format_ = d.pop("format")

        latency_p50_ms = d.pop("latency_p50_ms")

        latency_p95_ms = d.pop("latency_p95_ms")

        model_bytes = d.pop("model_bytes")

        nonzero_parameters = d.pop("nonzero_parameters")

        parameters = d.pop("parameters")

        peak_memory_bytes = d.pop("peak_memory_bytes")

        throughput_per_s = d.pop("throughput_per_s")

        compressed_model = cls(
            archive=archive,
            batch_size=batch_size,
            dtypes=dtypes,
            format_=format_,
            latency_p50_ms=latency_p50_ms,
            latency_p95_ms=latency_p95_ms,
            model_bytes=model_bytes,
            nonzero_parameters=nonzero_parameters,
            parameters=parameters,
            peak_memory_bytes=peak_memory_bytes,
            throughput_per_s=throughput_per_s,
        )

        return compressed_model
