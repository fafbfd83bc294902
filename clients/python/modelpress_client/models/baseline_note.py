from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="BaselineNote")


@_attrs_define
class BaselineNote:
    """Whether the original's figures were measured for this job or reused from an earlier
    one under the same key (compressor/baseline.py).

        Attributes:
            key (str):
            measured_at (datetime.datetime):
            reused (bool):
    """

    key: str
    measured_at: datetime.datetime
    reused: bool

    def to_dict(self) -> dict[str, Any]:
        key = self.key

        measured_at = self.measured_at.isoformat()

        reused = self.reused

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "key": key,
                "measured_at": measured_at,
                "reused": reused,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        key = d.pop("key")

        measured_at = datetime.datetime.fromisoformat(d.pop("measured_at"))

        reused = d.pop("reused")

        baseline_note = cls(
            key=key,
            measured_at=measured_at,
            reused=reused,
        )

        return baseline_note
