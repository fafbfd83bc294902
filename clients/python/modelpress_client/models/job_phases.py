from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_status import JobStatus

if TYPE_CHECKING:
    from ..models.phase_seconds import PhaseSeconds


T = TypeVar("T", bound="JobPhases")


@_attrs_define
class JobPhases:
    """Where a job's time went, from its log: a running job's last phase runs to now.

    Attributes:
        job_id (str):
        phases (list[PhaseSeconds]):
        status (JobStatus):
        total_seconds (float):
    """

    job_id: str
    phases: list[PhaseSeconds]
    status: JobStatus
    total_seconds: float
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        job_id = self.job_id

        phases = []
        for phases_item_data in self.phases:
            phases_item = phases_item_data.to_dict()
            phases.append(phases_item)

        status = self.status.value

        total_seconds = self.total_seconds

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "job_id": job_id,
                "phases": phases,
                "status": status,
                "total_seconds": total_seconds,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.phase_seconds import PhaseSeconds  # noqa: PLC0415

        d = dict(src_dict)
        job_id = d.pop("job_id")

        phases = []
        _phases = d.pop("phases")
        for phases_item_data in _phases:
            phases_item = PhaseSeconds.from_dict(phases_item_data)

            phases.append(phases_item)

        status = JobStatus(d.pop("status"))

        total_seconds = d.pop("total_seconds")

        job_phases = cls(
            job_id=job_id,
            phases=phases,
            status=status,
            total_seconds=total_seconds,
        )

        job_phases.additional_properties = d
        return job_phases

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
