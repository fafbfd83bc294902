from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="FidelityInputs")


@_attrs_define
class FidelityInputs:
    """
    Attributes:
        description (str):
        disjoint_from (list[str]):
        held_out (bool):
        labelled (bool):
        note (str):
        rows (int):
        source (str):
        used_for (list[str]):
    """

    description: str
    disjoint_from: list[str]
    held_out: bool
    labelled: bool
    note: str
    rows: int
    source: str
    used_for: list[str]

    def to_dict(self) -> dict[str, Any]:
        description = self.description

        disjoint_from = self.disjoint_from

        held_out = self.held_out

        labelled = self.labelled

        note = self.note

        rows = self.rows

        source = self.source

        used_for = self.used_for

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "description": description,
                "disjoint_from": disjoint_from,
                "held_out": held_out,
                "labelled": labelled,
                "note": note,
                "rows": rows,
                "source": source,
                "used_for": used_for,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        description = d.pop("description")

        disjoint_from = cast(list[str], d.pop("disjoint_from"))

        held_out = d.pop("held_out")

        labelled = d.pop("labelled")

        note = d.pop("note")

        rows = d.pop("rows")

        source = d.pop("source")

        used_for = cast(list[str], d.pop("used_for"))

        fidelity_inputs = cls(
            description=description,
            disjoint_from=disjoint_from,
            held_out=held_out,
            labelled=labelled,
            note=note,
            rows=rows,
            source=source,
            used_for=used_for,
        )

        return fidelity_inputs
