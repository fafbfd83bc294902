from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..models.structured_pruning_config_importance import StructuredPruningConfigImportance
from ..types import UNSET, Unset

T = TypeVar("T", bound="StructuredPruningConfig")


@_attrs_define
class StructuredPruningConfig:
    """
    Attributes:
        amount (float | Unset): Fraction of units removed. Default: 0.25.
        dead_only (bool | Unset): Plain chains: remove only units left dead by earlier pruning (no outgoing weights, or
            no incoming weights with the constant folded into the next bias); exact, and 'amount' is not used. Default:
            False.
        ffn (bool | Unset): Transformers: remove FFN neurons. Default: True.
        heads (bool | Unset): Transformers: remove attention heads (onnxruntime targets only). Default: False.
        importance (StructuredPruningConfigImportance | Unset):  Default: StructuredPruningConfigImportance.L2.
        technique (Literal['structured_pruning'] | Unset):  Default: 'structured_pruning'.
        version (int | Unset):  Default: 1.
    """

    amount: float | Unset = 0.25
    dead_only: bool | Unset = False
    ffn: bool | Unset = True
    heads: bool | Unset = False
    importance: StructuredPruningConfigImportance | Unset = StructuredPruningConfigImportance.L2
    technique: Literal["structured_pruning"] | Unset = "structured_pruning"
    version: int | Unset = 1

    def to_dict(self) -> dict[str, Any]:
        amount = self.amount

        dead_only = self.dead_only

        ffn = self.ffn

        heads = self.heads

        importance: str | Unset = UNSET
        if not isinstance(self.importance, Unset):
            importance = self.importance.value

        technique = self.technique

        version = self.version

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if amount is not UNSET:
            field_dict["amount"] = amount
        if dead_only is not UNSET:
            field_dict["dead_only"] = dead_only
        if ffn is not UNSET:
            field_dict["ffn"] = ffn
        if heads is not UNSET:
            field_dict["heads"] = heads
        if importance is not UNSET:
            field_dict["importance"] = importance
        if technique is not UNSET:
            field_dict["technique"] = technique
        if version is not UNSET:
            field_dict["version"] = version

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        amount = d.pop("amount", UNSET)

        dead_only = d.pop("dead_only", UNSET)

        ffn = d.pop("ffn", UNSET)

        heads = d.pop("heads", UNSET)

        _importance = d.pop("importance", UNSET)
        importance: StructuredPruningConfigImportance | Unset
        if isinstance(_importance, Unset):
            importance = UNSET
        else:
            importance = StructuredPruningConfigImportance(_importance)

        technique = cast(Literal["structured_pruning"] | Unset, d.pop("technique", UNSET))
        if technique != "structured_pruning" and not isinstance(technique, Unset):
            raise ValueError(f"technique must match const 'structured_pruning', got '{technique}'")

        version = d.pop("version", UNSET)

        structured_pruning_config = cls(
            amount=amount,
            dead_only=dead_only,
            ffn=ffn,
            heads=heads,
            importance=importance,
            technique=technique,
            version=version,
        )

        return structured_pruning_config
