from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="PerplexityFigures")


@_attrs_define
class PerplexityFigures:
    """
    Attributes:
        compressed (float):
        original (float):
        relative_increase (float): compressed / original - 1
        standard_error (float): Standard error of the compressed model's mean log-likelihood across windows: differences
            in log-perplexity below about twice this are within noise.
        text (str): Which text: the job's eval set or the default held-out text.
        tokens (int):
        window (int):
    """

    compressed: float
    original: float
    relative_increase: float
    standard_error: float
    text: str
    tokens: int
    window: int

    def to_dict(self) -> dict[str, Any]:
        compressed = self.compressed

        original = self.original

        relative_increase = self.relative_increase

        standard_error = self.standard_error

        text = self.text

        tokens = self.tokens

        window = self.window

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "compressed": compressed,
                "original": original,
                "relative_increase": relative_increase,
                "standard_error": standard_error,
                "text": text,
                "tokens": tokens,
                "window": window,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        compressed = d.pop("compressed")

        original = d.pop("original")

        relative_increase = d.pop("relative_increase")

        standard_error = d.pop("standard_error")

        text = d.pop("text")

        tokens = d.pop("tokens")

        window = d.pop("window")

        perplexity_figures = cls(
            compressed=compressed,
            original=original,
            relative_increase=relative_increase,
            standard_error=standard_error,
            text=text,
            tokens=tokens,
            window=window,
        )

        return perplexity_figures
