from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.tenant_share_read_source import TenantShareReadSource

T = TypeVar("T", bound="TenantShareRead")


@_attrs_define
class TenantShareRead:
    """
    Attributes:
        running_jobs (int | None): null: no limit
        source (TenantShareReadSource): set for this tenant, or the server's MODELPRESS_TENANT_RUNNING_JOBS_DEFAULT
        tenant (str):
    """

    running_jobs: int | None
    source: TenantShareReadSource
    tenant: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        running_jobs: int | None
        running_jobs = self.running_jobs

        source = self.source.value

        tenant = self.tenant

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "running_jobs": running_jobs,
                "source": source,
                "tenant": tenant,
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

        source = TenantShareReadSource(d.pop("source"))

        tenant = d.pop("tenant")

        tenant_share_read = cls(
            running_jobs=running_jobs,
            source=source,
            tenant=tenant,
        )

        tenant_share_read.additional_properties = d
        return tenant_share_read

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
