from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="PackedArchive")


@_attrs_define
class PackedArchive:
    """
    Attributes:
        bytes_ (int):
        format_ (str):
        path (str):
    """

    bytes_: int
    format_: str
    path: str

    def to_dict(self) -> dict[str, Any]:
        bytes_ = self.bytes_

        format_ = self.format_

        path = self.path

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "bytes": bytes_,
                "format": format_,
                "path": path,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        bytes_ = d.pop("bytes")

        format_ = d.pop("format")

        path = d.pop("path")

        packed_archive = cls(
            bytes_=bytes_,
            format_=format_,
            path=path,
        )

        return packed_archive
