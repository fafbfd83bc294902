from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="CandidateFigures")


@_attrs_define
class CandidateFigures:
    """
    Attributes:
        held_out_perplexity (float):
        method (str):
        seconds (float):
    """

    held_out_perplexity: float
    method: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        held_out_perplexity = self.held_out_perplexity

        method = self.method

        seconds = self.seconds

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "held_out_perplexity": held_out_perplexity,
                "method": method,
                "seconds": seconds,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        held_out_perplexity = d.pop("held_out_perplexity")

        method = d.pop("method")

        seconds = d.pop("seconds")

        candidate_figures = cls(
            held_out_perplexity=held_out_perplexity,
            method=method,
            seconds=seconds,
        )

        return candidate_figures
