from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.dataset_inspection_tensors_type_0 import DatasetInspectionTensorsType0


T = TypeVar("T", bound="DatasetInspection")


@_attrs_define
class DatasetInspection:
    """Format, sample count, whether labels are present, and each array's shape and dtype
    (empty for JSONL text).

        Attributes:
            format_ (None | str | Unset):
            has_labels (bool | None | Unset):
            samples (int | None | Unset):
            tensors (DatasetInspectionTensorsType0 | None | Unset):
    """

    format_: None | str | Unset = UNSET
    has_labels: bool | None | Unset = UNSET
    samples: int | None | Unset = UNSET
    tensors: DatasetInspectionTensorsType0 | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.dataset_inspection_tensors_type_0 import DatasetInspectionTensorsType0  # noqa: PLC0415

        format_: None | str | Unset
        if isinstance(self.format_, Unset):
            format_ = UNSET
        else:
            format_ = self.format_

        has_labels: bool | None | Unset
        if isinstance(self.has_labels, Unset):
            has_labels = UNSET
        else:
            has_labels = self.has_labels

        samples: int | None | Unset
        if isinstance(self.samples, Unset):
            samples = UNSET
        else:
            samples = self.samples

        tensors: dict[str, Any] | None | Unset
        if isinstance(self.tensors, Unset):
            tensors = UNSET
        elif isinstance(self.tensors, DatasetInspectionTensorsType0):
            tensors = self.tensors.to_dict()
        else:
            tensors = self.tensors

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if format_ is not UNSET:
            field_dict["format"] = format_
        if has_labels is not UNSET:
            field_dict["has_labels"] = has_labels
        if samples is not UNSET:
            field_dict["samples"] = samples
        if tensors is not UNSET:
            field_dict["tensors"] = tensors

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.dataset_inspection_tensors_type_0 import DatasetInspectionTensorsType0  # noqa: PLC0415

        d = dict(src_dict)

        def _parse_format_(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        format_ = _parse_format_(d.pop("format", UNSET))

        def _parse_has_labels(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        has_labels = _parse_has_labels(d.pop("has_labels", UNSET))

        def _parse_samples(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        samples = _parse_samples(d.pop("samples", UNSET))

        def _parse_tensors(data: object) -> DatasetInspectionTensorsType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                tensors_type_0 = DatasetInspectionTensorsType0.from_dict(data)

                return tensors_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(DatasetInspectionTensorsType0 | None | Unset, data)

        tensors = _parse_tensors(d.pop("tensors", UNSET))

        dataset_inspection = cls(
            format_=format_,
            has_labels=has_labels,
            samples=samples,
            tensors=tensors,
        )

        dataset_inspection.additional_properties = d
        return dataset_inspection

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
