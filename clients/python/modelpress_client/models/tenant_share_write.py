from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="TenantShareWrite")


@_attrs_define
class TenantShareWrite:
    """
    Attributes:
        running_jobs (int | None): jobs of this tenant sent to the workers or running at once; beyond it, its jobs wait
            in the database (waiting_reason says so). null: no limit
    """

    running_jobs: int | None

    def to_dict(self) -> dict[str, Any]:
        running_jobs: int | None
        running_jobs = self.running_jobs

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "running_jobs": running_jobs,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_running_jobs(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        running_jobs = _parse_running_jobs(d.pop("running_jobs"))

        tenant_share_write = cls(
            running_jobs=running_jobs,
        )

        return tenant_share_write
