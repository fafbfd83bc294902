from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="MlflowRegistration")


@_attrs_define
class MlflowRegistration:
    """
    Attributes:
        model_name (str): registered model's name
    """

    model_name: str

    def to_dict(self) -> dict[str, Any]:
        model_name = self.model_name

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "model_name": model_name,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        model_name = d.pop("model_name")

        mlflow_registration = cls(
            model_name=model_name,
        )

        return mlflow_registration
