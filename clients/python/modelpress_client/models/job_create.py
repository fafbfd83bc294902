from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.goal import Goal
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
        data (JobData | Unset): Dataset ids by role. Without ``eval``, fidelity uses fixed or generated inputs
            (reported).
        goal (Goal | None | Unset): instead of a recipe: what to optimise and the fidelity budget, checked on data.eval;
            candidates run as child jobs and the best one becomes this job's artifact
        labels (JobCreateLabels | Unset): at most 32 labels; keys match ^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$, values at
            most 255 characters
        priority (int | Unset): 0 lowest, 9 highest Default: 5.
        recipe (None | Recipe | Unset): the steps to apply; or give a goal instead
        register (None | Registration | Unset): hand the artifact to MLflow when the job succeeds
        target (Target | Unset): Where the compressed model will run; latency is measured at these shapes on this
            runtime.
        time_limit_s (int | None | Unset): stop the job after this long (default: server's)
    """

    model_id: str
    data: JobData | Unset = UNSET
    goal: Goal | None | Unset = UNSET
    labels: JobCreateLabels | Unset = UNSET
    priority: int | Unset = 5
    recipe: None | Recipe | Unset = UNSET
    register: None | Registration | Unset = UNSET
    target: Target | Unset = UNSET
    time_limit_s: int | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.goal import Goal  # noqa: PLC0415
        from ..models.recipe import Recipe  # noqa: PLC0415
        from ..models.registration import Registration  # noqa: PLC0415

        model_id = self.model_id

        data: dict[str, Any] | Unset = UNSET
        if not isinstance(self.data, Unset):
            data = self.data.to_dict()

        goal: dict[str, Any] | None | Unset
        if isinstance(self.goal, Unset):
            goal = UNSET
        elif isinstance(self.goal, Goal):
            goal = self.goal.to_dict()
        else:
            goal = self.goal

        labels: dict[str, Any] | Unset = UNSET
        if not isinstance(self.labels, Unset):
            labels = self.labels.to_dict()

        priority = self.priority

        recipe: dict[str, Any] | None | Unset
        if isinstance(self.recipe, Unset):
            recipe = UNSET
        elif isinstance(self.recipe, Recipe):
            recipe = self.recipe.to_dict()
        else:
            recipe = self.recipe

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
            }
        )
        if data is not UNSET:
            field_dict["data"] = data
        if goal is not UNSET:
            field_dict["goal"] = goal
        if labels is not UNSET:
            field_dict["labels"] = labels
        if priority is not UNSET:
            field_dict["priority"] = priority
        if recipe is not UNSET:
            field_dict["recipe"] = recipe
        if register is not UNSET:
            field_dict["register"] = register
        if target is not UNSET:
            field_dict["target"] = target
        if time_limit_s is not UNSET:
            field_dict["time_limit_s"] = time_limit_s

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.goal import Goal  # noqa: PLC0415
        from ..models.job_create_labels import JobCreateLabels  # noqa: PLC0415
        from ..models.job_data import JobData  # noqa: PLC0415
        from ..models.recipe import Recipe  # noqa: PLC0415
        from ..models.registration import Registration  # noqa: PLC0415
        from ..models.target import Target  # noqa: PLC0415

        d = dict(src_dict)
        model_id = d.pop("model_id")

        _data = d.pop("data", UNSET)
        data: JobData | Unset
        if isinstance(_data, Unset):
            data = UNSET
        else:
            data = JobData.from_dict(_data)

        def _parse_goal(data: object) -> Goal | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                goal_type_0 = Goal.from_dict(data)

                return goal_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(Goal | None | Unset, data)

        goal = _parse_goal(d.pop("goal", UNSET))

        _labels = d.pop("labels", UNSET)
        labels: JobCreateLabels | Unset
        if isinstance(_labels, Unset):
            labels = UNSET
        else:
            labels = JobCreateLabels.from_dict(_labels)

        priority = d.pop("priority", UNSET)

        def _parse_recipe(data: object) -> None | Recipe | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                recipe_type_0 = Recipe.from_dict(data)

                return recipe_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Recipe | Unset, data)

        recipe = _parse_recipe(d.pop("recipe", UNSET))

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
            data=data,
            goal=goal,
            labels=labels,
            priority=priority,
            recipe=recipe,
            register=register,
            target=target,
            time_limit_s=time_limit_s,
        )

        return job_create
