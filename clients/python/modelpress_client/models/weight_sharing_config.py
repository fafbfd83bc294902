from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="WeightSharingConfig")


@_attrs_define
class WeightSharingConfig:
    """
    Attributes:
        biases (bool | Unset): Share each layer's bias values too: an int8 graph keeps biases in float32, which no
            entropy coder shrinks (about a quarter of a pruned int8 MLP's packed bytes). Default: True.
        clusters (int | Unset): Distinct non-zero values per layer (16 = 4-bit indices). Default: 16.
        exclude (list[str] | Unset): Module-name substrings left as they are.
        technique (Literal['weight_sharing'] | Unset):  Default: 'weight_sharing'.
        version (int | Unset):  Default: 1.
    """

    biases: bool | Unset = True
    clusters: int | Unset = 16
    exclude: list[str] | Unset = UNSET
    technique: Literal["weight_sharing"] | Unset = "weight_sharing"
    version: int | Unset = 1

    def to_dict(self) -> dict[str, Any]:
        biases = self.biases

        clusters = self.clusters

        exclude: list[str] | Unset = UNSET
        if not isinstance(self.exclude, Unset):
            exclude = self.exclude

        technique = self.technique

        version = self.version

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if biases is not UNSET:
            field_dict["biases"] = biases
        if clusters is not UNSET:
            field_dict["clusters"] = clusters
        if exclude is not UNSET:
            field_dict["exclude"] = exclude
        if technique is not UNSET:
            field_dict["technique"] = technique
        if version is not UNSET:
            field_dict["version"] = version

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        biases = d.pop("biases", UNSET)

        clusters = d.pop("clusters", UNSET)

        exclude = cast(list[str], d.pop("exclude", UNSET))

        technique = cast(Literal["weight_sharing"] | Unset, d.pop("technique", UNSET))
        if technique != "weight_sharing" and not isinstance(technique, Unset):
            raise ValueError(f"technique must match const 'weight_sharing', got '{technique}'")

        version = d.pop("version", UNSET)

        weight_sharing_config = cls(
            biases=biases,
            clusters=clusters,
            exclude=exclude,
            technique=technique,
            version=version,
        )

        return weight_sharing_config
