from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.dataset_read_status import DatasetReadStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.dataset_inspection import DatasetInspection
    from ..models.dataset_read_labels import DatasetReadLabels


T = TypeVar("T", bound="DatasetRead")


@_attrs_define
class DatasetRead:
    """
    Attributes:
        created_at (datetime.datetime):
        filename (str):
        format_ (str): npz, safetensors or jsonl, judged from the file's first bytes at upload
        id (str):
        inspection (DatasetInspection): Format, sample count, whether labels are present, and each array's shape and
            dtype
            (empty for JSONL text).
        labels (DatasetReadLabels):
        sha256 (str):
        size_bytes (int):
        status (DatasetReadStatus): pending until a worker has inspected the upload (inspecting while one does); a job
            needs ready
        updated_at (datetime.datetime):
        rejection_reason (None | str | Unset):
    """

    created_at: datetime.datetime
    filename: str
    format_: str
    id: str
    inspection: DatasetInspection
    labels: DatasetReadLabels
    sha256: str
    size_bytes: int
    status: DatasetReadStatus
    updated_at: datetime.datetime
    rejection_reason: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        filename = self.filename

        format_ = self.format_

        id = self.id

        inspection = self.inspection.to_dict()

        labels = self.labels.to_dict()

        sha256 = self.sha256

        size_bytes = self.size_bytes

        status = self.status.value

        updated_at = self.updated_at.isoformat()

        rejection_reason: None | str | Unset
        if isinstance(self.rejection_reason, Unset):
            rejection_reason = UNSET
        else:
            rejection_reason = self.rejection_reason

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "filename": filename,
                "format": format_,
                "id": id,
                "inspection": inspection,
                "labels": labels,
                "sha256": sha256,
                "size_bytes": size_bytes,
                "status": status,
                "updated_at": updated_at,
            }
        )
        if rejection_reason is not UNSET:
            field_dict["rejection_reason"] = rejection_reason

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.dataset_inspection import DatasetInspection  # noqa: PLC0415
        from ..models.dataset_read_labels import DatasetReadLabels  # noqa: PLC0415

        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        filename = d.pop("filename")

        format_ = d.pop("format")

        id = d.pop("id")

        inspection = DatasetInspection.from_dict(d.pop("inspection"))

        labels = DatasetReadLabels.from_dict(d.pop("labels"))

        sha256 = d.pop("sha256")

        size_bytes = d.pop("size_bytes")

        status = DatasetReadStatus(d.pop("status"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        def _parse_rejection_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        rejection_reason = _parse_rejection_reason(d.pop("rejection_reason", UNSET))

        dataset_read = cls(
            created_at=created_at,
            filename=filename,
            format_=format_,
            id=id,
            inspection=inspection,
            labels=labels,
            sha256=sha256,
            size_bytes=size_bytes,
            status=status,
            updated_at=updated_at,
            rejection_reason=rejection_reason,
        )

        dataset_read.additional_properties = d
        return dataset_read

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
