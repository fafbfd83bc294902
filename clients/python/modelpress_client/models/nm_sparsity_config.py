from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="NMSparsityConfig")


@_attrs_define
class NMSparsityConfig:
    """
    Attributes:
        exclude (list[str] | Unset): Module-name substrings left dense.
        m (int | Unset): Group length along the input dimension. Default: 4.
        n (int | Unset): Non-zeros kept per group. Default: 2.
        technique (Literal['nm_sparsity'] | Unset):  Default: 'nm_sparsity'.
        version (int | Unset):  Default: 1.
    """

    exclude: list[str] | Unset = UNSET
    m: int | Unset = 4
    n: int | Unset = 2
    technique: Literal["nm_sparsity"] | Unset = "nm_sparsity"
    version: int | Unset = 1

    def to_dict(self) -> dict[str, Any]:
        exclude: list[str] | Unset = UNSET
        if not isinstance(self.exclude, Unset):
            exclude = self.exclude

        m = self.m

        n = self.n

        technique = self.technique

        version = self.version

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if exclude is not UNSET:
            field_dict["exclude"] = exclude
        if m is not UNSET:
            field_dict["m"] = m
        if n is not UNSET:
            field_dict["n"] = n
        if technique is not UNSET:
            field_dict["technique"] = technique
        if version is not UNSET:
            field_dict["version"] = version

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        exclude = cast(list[str], d.pop("exclude", UNSET))

        m = d.pop("m", UNSET)

        n = d.pop("n", UNSET)

        technique = cast(Literal["nm_sparsity"] | Unset, d.pop("technique", UNSET))
        if technique != "nm_sparsity" and not isinstance(technique, Unset):
            raise ValueError(f"technique must match const 'nm_sparsity', got '{technique}'")

        version = d.pop("version", UNSET)

        nm_sparsity_config = cls(
            exclude=exclude,
            m=m,
            n=n,
            technique=technique,
            version=version,
        )

        return nm_sparsity_config
