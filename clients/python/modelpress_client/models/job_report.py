from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.compression_report import CompressionReport
    from ..models.phase_seconds import PhaseSeconds


T = TypeVar("T", bound="JobReport")


@_attrs_define
class JobReport:
    """
    Attributes:
        job_id (str):
        report (CompressionReport):
        phases (list[PhaseSeconds] | Unset): where the job's time went (GET .../phases)
    """

    job_id: str
    report: CompressionReport
    phases: list[PhaseSeconds] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        job_id = self.job_id

        report = self.report.to_dict()

        phases: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.phases, Unset):
            phases = []
            for phases_item_data in self.phases:
                phases_item = phases_item_data.to_dict()
                phases.append(phases_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "job_id": job_id,
                "report": report,
            }
        )
        if phases is not UNSET:
            field_dict["phases"] = phases

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.compression_report import CompressionReport  # noqa: PLC0415
        from ..models.phase_seconds import PhaseSeconds  # noqa: PLC0415

        d = dict(src_dict)
        job_id = d.pop("job_id")

        report = CompressionReport.from_dict(d.pop("report"))

        _phases = d.pop("phases", UNSET)
        phases: list[PhaseSeconds] | Unset = UNSET
        if _phases is not UNSET:
            phases = []
            for phases_item_data in _phases:
                phases_item = PhaseSeconds.from_dict(phases_item_data)

                phases.append(phases_item)

        job_report = cls(
            job_id=job_id,
            report=report,
            phases=phases,
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
