from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="CalibrationInputs")


@_attrs_define
class CalibrationInputs:
    """
    Attributes:
        description (str):
        rows (int):
        source (str):
    """

    description: str
    rows: int
    source: str

    def to_dict(self) -> dict[str, Any]:
        description = self.description

        rows = self.rows

        source = self.source

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "description": description,
                "rows": rows,
                "source": source,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        description = d.pop("description")

        rows = d.pop("rows")

        source = d.pop("source")

        calibration_inputs = cls(
            description=description,
            rows=rows,
            source=source,
        )

        return calibration_inputs
