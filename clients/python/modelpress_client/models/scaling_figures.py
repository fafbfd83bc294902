from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="ScalingFigures")


@_attrs_define
class ScalingFigures:
    """AWQ's or SmoothQuant's per-channel scalings (compressor/llm/awq.py).

    Attributes:
        median_alpha (float):
        median_error_ratio (float): Median over pairs of the rounded linears' output error on the calibration text,
            scaled over unscaled (below 1: the scaling helped).
        pairs (int): Norm/linear -> linears pairs a scale was searched for.
        scaled (int): Pairs scaled (alpha > 0); the rest round as they were.
        undone (int): Scalings taken back because they changed the float layer's output.
    """

    median_alpha: float
    median_error_ratio: float
    pairs: int
    scaled: int
    undone: int

    def to_dict(self) -> dict[str, Any]:
        median_alpha = self.median_alpha

        median_error_ratio = self.median_error_ratio

        pairs = self.pairs

        scaled = self.scaled

        undone = self.undone

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "median_alpha": median_alpha,
                "median_error_ratio": median_error_ratio,
                "pairs": pairs,
                "scaled": scaled,
                "undone": undone,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        median_alpha = d.pop("median_alpha")

        median_error_ratio = d.pop("median_error_ratio")

        pairs = d.pop("pairs")

        scaled = d.pop("scaled")

        undone = d.pop("undone")

        scaling_figures = cls(
            median_alpha=median_alpha,
            median_error_ratio=median_error_ratio,
            pairs=pairs,
            scaled=scaled,
            undone=undone,
        )

        return scaling_figures
