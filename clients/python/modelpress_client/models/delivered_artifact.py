from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="DeliveredArtifact")


@_attrs_define
class DeliveredArtifact:
    """Added by the worker once the artifact is stored: what the download is.

    Attributes:
        archive (str):
        bytes_ (int):
        format_ (str):
        sha256 (str):
    """

    archive: str
    bytes_: int
    format_: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        archive = self.archive

        bytes_ = self.bytes_

        format_ = self.format_

        sha256 = self.sha256

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "archive": archive,
                "bytes": bytes_,
                "format": format_,
                "sha256": sha256,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        archive = d.pop("archive")

        bytes_ = d.pop("bytes")

        format_ = d.pop("format")

        sha256 = d.pop("sha256")

        delivered_artifact = cls(
            archive=archive,
            bytes_=bytes_,
            format_=format_,
            sha256=sha256,
        )

        return delivered_artifact
