from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_status import JobStatus

if TYPE_CHECKING:
    from ..models.job_figures import JobFigures


T = TypeVar("T", bound="ModelJobResult")


@_attrs_define
class ModelJobResult:
    """One finished job on a model; ``figures`` is null unless it succeeded.

    Attributes:
        created_at (datetime.datetime):
        figures (JobFigures | None):
        finished_at (datetime.datetime | None):
        job_id (str):
        recipe_summary (str):
        status (JobStatus):
    """

    created_at: datetime.datetime
    figures: JobFigures | None
    finished_at: datetime.datetime | None
    job_id: str
    recipe_summary: str
    status: JobStatus
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.job_figures import JobFigures  # noqa: PLC0415

        created_at = self.created_at.isoformat()

        figures: dict[str, Any] | None
        if isinstance(self.figures, JobFigures):
            figures = self.figures.to_dict()
        else:
            figures = self.figures

        finished_at: None | str
        if isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        job_id = self.job_id

        recipe_summary = self.recipe_summary

        status = self.status.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "figures": figures,
                "finished_at": finished_at,
                "job_id": job_id,
                "recipe_summary": recipe_summary,
                "status": status,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.job_figures import JobFigures  # noqa: PLC0415

        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        def _parse_figures(data: object) -> JobFigures | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                figures_type_0 = JobFigures.from_dict(data)

                return figures_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobFigures | None, data)

        figures = _parse_figures(d.pop("figures"))

        def _parse_finished_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)

                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        finished_at = _parse_finished_at(d.pop("finished_at"))

        job_id = d.pop("job_id")

        recipe_summary = d.pop("recipe_summary")

        status = JobStatus(d.pop("status"))

        model_job_result = cls(
            created_at=created_at,
            figures=figures,
            finished_at=finished_at,
            job_id=job_id,
            recipe_summary=recipe_summary,
            status=status,
        )

        model_job_result.additional_properties = d
        return model_job_result

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
