from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.job_create_labels import JobCreateLabels
    from ..models.job_data import JobData
    from ..models.recipe import Recipe
    from ..models.registration import Registration
    from ..models.target import Target


T = TypeVar("T", bound="JobCreate")


@_attrs_define
class JobCreate:
    """The recipe and target are the engine's own validated configs, not a restatement.

    Attributes:
        model_id (str):
        recipe (Recipe):
        data (JobData | Unset): Dataset ids by role. Without ``eval``, fidelity uses fixed or generated inputs
            (reported).
        labels (JobCreateLabels | Unset): at most 32 labels; keys match ^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$, values at
            most 255 characters
        priority (int | Unset): 0 lowest, 9 highest Default: 5.
        register (None | Registration | Unset): hand the artifact to MLflow when the job succeeds
        target (Target | Unset): Where the compressed model will run; latency is measured at these shapes on this
            runtime.
        time_limit_s (int | None | Unset): stop the job after this long (default: server's)
    """

    model_id: str
    recipe: Recipe
    data: JobData | Unset = UNSET
    labels: JobCreateLabels | Unset = UNSET
    priority: int | Unset = 5
    register: None | Registration | Unset = UNSET
    target: Target | Unset = UNSET
    time_limit_s: int | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.registration import Registration  # noqa: PLC0415

        model_id = self.model_id

        recipe = self.recipe.to_dict()

        data: dict[str, Any] | Unset = UNSET
        if not isinstance(self.data, Unset):
            data = self.data.to_dict()

        labels: dict[str, Any] | Unset = UNSET
        if not isinstance(self.labels, Unset):
            labels = self.labels.to_dict()

        priority = self.priority

        register: dict[str, Any] | None | Unset
        if isinstance(self.register, Unset):
            register = UNSET
        elif isinstance(self.register, Registration):
            register = self.register.to_dict()
        else:
            register = self.register

        target: dict[str, Any] | Unset = UNSET
        if not isinstance(self.target, Unset):
            target = self.target.to_dict()

        time_limit_s: int | None | Unset
        if isinstance(self.time_limit_s, Unset):
            time_limit_s = UNSET
        else:
            time_limit_s = self.time_limit_s

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "model_id": model_id,
                "recipe": recipe,
            }
        )
        if data is not UNSET:
            field_dict["data"] = data
        if labels is not UNSET:
            field_dict["labels"] = labels
        if priority is not UNSET:
            field_dict["priority"] = priority
        if register is not UNSET:
            field_dict["register"] = register
        if target is not UNSET:
            field_dict["target"] = target
        if time_limit_s is not UNSET:
            field_dict["time_limit_s"] = time_limit_s

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.job_create_labels import JobCreateLabels  # noqa: PLC0415
        from ..models.job_data import JobData  # noqa: PLC0415
        from ..models.recipe import Recipe  # noqa: PLC0415
        from ..models.registration import Registration  # noqa: PLC0415
        from ..models.target import Target  # noqa: PLC0415

        d = dict(src_dict)
        model_id = d.pop("model_id")

        recipe = Recipe.from_dict(d.pop("recipe"))

        _data = d.pop("data", UNSET)
        data: JobData | Unset
        if isinstance(_data, Unset):
            data = UNSET
        else:
            data = JobData.from_dict(_data)

        _labels = d.pop("labels", UNSET)
        labels: JobCreateLabels | Unset
        if isinstance(_labels, Unset):
            labels = UNSET
        else:
            labels = JobCreateLabels.from_dict(_labels)

        priority = d.pop("priority", UNSET)

        def _parse_register(data: object) -> None | Registration | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                register_type_0 = Registration.from_dict(data)

                return register_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Registration | Unset, data)

        register = _parse_register(d.pop("register", UNSET))

        _target = d.pop("target", UNSET)
        target: Target | Unset
        if isinstance(_target, Unset):
            target = UNSET
        else:
            target = Target.from_dict(_target)

        def _parse_time_limit_s(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        time_limit_s = _parse_time_limit_s(d.pop("time_limit_s", UNSET))

        job_create = cls(
            model_id=model_id,
            recipe=recipe,
            data=data,
            labels=labels,
            priority=priority,
            register=register,
            target=target,
            time_limit_s=time_limit_s,
        )

        return job_create
