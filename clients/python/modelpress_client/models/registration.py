from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.mlflow_registration import MlflowRegistration


T = TypeVar("T", bound="Registration")


@_attrs_define
class Registration:
    """Where a succeeded job's artifact is handed off; the server must be configured for it.

    Attributes:
        mlflow (MlflowRegistration):
    """

    mlflow: MlflowRegistration

    def to_dict(self) -> dict[str, Any]:
        mlflow = self.mlflow.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "mlflow": mlflow,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.mlflow_registration import MlflowRegistration  # noqa: PLC0415

        d = dict(src_dict)
        mlflow = MlflowRegistration.from_dict(d.pop("mlflow"))

        registration = cls(
            mlflow=mlflow,
        )

        return registration
