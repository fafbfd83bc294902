from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.compression_report import CompressionReport


T = TypeVar("T", bound="JobReport")


@_attrs_define
class JobReport:
    """
    Attributes:
        job_id (str):
        report (CompressionReport):
    """

    job_id: str
    report: CompressionReport
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        job_id = self.job_id

        report = self.report.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "job_id": job_id,
                "report": report,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.compression_report import CompressionReport  # noqa: PLC0415

        d = dict(src_dict)
        job_id = d.pop("job_id")

        report = CompressionReport.from_dict(d.pop("report"))

        job_report = cls(
            job_id=job_id,
            report=report,
        )

        job_report.additional_properties = d
        return job_report

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
