from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="OriginalFigures")


@_attrs_define
class OriginalFigures:
    """
    Attributes:
        bytes_ (int): the fp32 baseline's bytes (as the reports compare)
        latency_p50_ms (float):
        accuracy (float | None | Unset):
    """

    bytes_: int
    latency_p50_ms: float
    accuracy: float | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        bytes_ = self.bytes_

        latency_p50_ms = self.latency_p50_ms

        accuracy: float | None | Unset
        if isinstance(self.accuracy, Unset):
            accuracy = UNSET
        else:
            accuracy = self.accuracy

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "bytes": bytes_,
                "latency_p50_ms": latency_p50_ms,
            }
        )
        if accuracy is not UNSET:
            field_dict["accuracy"] = accuracy

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        bytes_ = d.pop("bytes")

        latency_p50_ms = d.pop("latency_p50_ms")

        def _parse_accuracy(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        accuracy = _parse_accuracy(d.pop("accuracy", UNSET))

        original_figures = cls(
            bytes_=bytes_,
            latency_p50_ms=latency_p50_ms,
            accuracy=accuracy,
        )

        return original_figures
