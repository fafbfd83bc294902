from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="MemoryFigures")


@_attrs_define
class MemoryFigures:
    """
    Attributes:
        bound_bytes (int): 2 GiB + 1.5x the model's weight bytes.
        peak_bytes (int): Peak of the job's process tree, summed.
        source (str): pss (shared pages counted once) or rss.
        within_bound (bool):
    """

    bound_bytes: int
    peak_bytes: int
    source: str
    within_bound: bool

    def to_dict(self) -> dict[str, Any]:
        bound_bytes = self.bound_bytes

        peak_bytes = self.peak_bytes

        source = self.source

        within_bound = self.within_bound

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "bound_bytes": bound_bytes,
                "peak_bytes": peak_bytes,
                "source": source,
                "within_bound": within_bound,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        bound_bytes = d.pop("bound_bytes")

        peak_bytes = d.pop("peak_bytes")

        source = d.pop("source")

        within_bound = d.pop("within_bound")

        memory_figures = cls(
            bound_bytes=bound_bytes,
            peak_bytes=peak_bytes,
            source=source,
            within_bound=within_bound,
        )

        return memory_figures
