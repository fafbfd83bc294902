from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="JobData")


@_attrs_define
class JobData:
    """Dataset ids by role. Without ``eval``, fidelity uses fixed or generated inputs (reported).

    Attributes:
        calibration (None | str | Unset):
        eval_ (None | str | Unset):
        train (None | str | Unset):
    """

    calibration: None | str | Unset = UNSET
    eval_: None | str | Unset = UNSET
    train: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        calibration: None | str | Unset
        if isinstance(self.calibration, Unset):
            calibration = UNSET
        else:
            calibration = self.calibration

        eval_: None | str | Unset
        if isinstance(self.eval_, Unset):
            eval_ = UNSET
        else:
            eval_ = self.eval_

        train: None | str | Unset
        if isinstance(self.train, Unset):
            train = UNSET
        else:
            train = self.train

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if calibration is not UNSET:
            field_dict["calibration"] = calibration
        if eval_ is not UNSET:
            field_dict["eval"] = eval_
        if train is not UNSET:
            field_dict["train"] = train

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_calibration(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        calibration = _parse_calibration(d.pop("calibration", UNSET))

        def _parse_eval_(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        eval_ = _parse_eval_(d.pop("eval", UNSET))

        def _parse_train(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        train = _parse_train(d.pop("train", UNSET))

        job_data = cls(
            calibration=calibration,
            eval_=eval_,
            train=train,
        )

        return job_data
