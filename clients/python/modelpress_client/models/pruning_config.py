from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..models.pruning_config_scope import PruningConfigScope
from ..types import UNSET, Unset

T = TypeVar("T", bound="PruningConfig")


@_attrs_define
class PruningConfig:
    """
    Attributes:
        method (Literal['magnitude'] | Unset):  Default: 'magnitude'.
        scope (PruningConfigScope | Unset):  Default: PruningConfigScope.LAYER.
        sparsity (float | Unset):  Default: 0.5.
        technique (Literal['pruning'] | Unset):  Default: 'pruning'.
        version (int | Unset):  Default: 1.
    """

    method: Literal["magnitude"] | Unset = "magnitude"
    scope: PruningConfigScope | Unset = PruningConfigScope.LAYER
    sparsity: float | Unset = 0.5
    technique: Literal["pruning"] | Unset = "pruning"
    version: int | Unset = 1

    def to_dict(self) -> dict[str, Any]:
        method = self.method

        scope: str | Unset = UNSET
        if not isinstance(self.scope, Unset):
            scope = self.scope.value

        sparsity = self.sparsity

        technique = self.technique

        version = self.version

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if method is not UNSET:
            field_dict["method"] = method
        if scope is not UNSET:
            field_dict["scope"] = scope
        if sparsity is not UNSET:
            field_dict["sparsity"] = sparsity
        if technique is not UNSET:
            field_dict["technique"] = technique
        if version is not UNSET:
            field_dict["version"] = version

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        method = cast(Literal["magnitude"] | Unset, d.pop("method", UNSET))
        if method != "magnitude" and not isinstance(method, Unset):
            raise ValueError(f"method must match const 'magnitude', got '{method}'")

        _scope = d.pop("scope", UNSET)
        scope: PruningConfigScope | Unset
        if isinstance(_scope, Unset):
            scope = UNSET
        else:
            scope = PruningConfigScope(_scope)

        sparsity = d.pop("sparsity", UNSET)

        technique = cast(Literal["pruning"] | Unset, d.pop("technique", UNSET))
        if technique != "pruning" and not isinstance(technique, Unset):
            raise ValueError(f"technique must match const 'pruning', got '{technique}'")

        version = d.pop("version", UNSET)

        pruning_config = cls(
            method=method,
            scope=scope,
            sparsity=sparsity,
            technique=technique,
            version=version,
        )

        return pruning_config
