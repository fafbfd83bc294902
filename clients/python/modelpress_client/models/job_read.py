from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_status import JobStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.goal import Goal
    from ..models.job_read_data import JobReadData
    from ..models.job_read_labels import JobReadLabels
    from ..models.recipe import Recipe
    from ..models.registered import Registered
    from ..models.target import Target


T = TypeVar("T", bound="JobRead")


@_attrs_define
class JobRead:
    """
    Attributes:
        artifact_bytes (int | None):
        artifact_format (None | str):
        artifact_sha256 (None | str):
        attempts (int):
        created_at (datetime.datetime):
        data (JobReadData):
        error (None | str):
        finished_at (datetime.datetime | None):
        id (str):
        labels (JobReadLabels):
        model_id (str):
        phase (str):
        priority (int):
        progress (float):
        queue (str):
        recipe (None | Recipe): null for a goal job until its search chose one
        started_at (datetime.datetime | None):
        status (JobStatus):
        target (Target): Where the compressed model will run; latency is measured at these shapes on this runtime.
        time_limit_s (int | None):
        eta_s (float | None | Unset): seconds left, extrapolated from progress so far (running jobs only)
        goal (Goal | None | Unset):
        parent_id (None | str | Unset): the goal job this candidate belongs to
        registered (None | Registered | Unset):
        waiting_reason (None | str | Unset): why a queued job has not started: held for its tenant's running-job share,
            or no live worker serves its pool
        warnings (list[str] | Unset): what the result does worse than the original on the target (slower, larger, less
            faithful), from its report; empty until the job succeeds
    """

    artifact_bytes: int | None
    artifact_format: None | str
    artifact_sha256: None | str
    attempts: int
    created_at: datetime.datetime
    data: JobReadData
    error: None | str
    finished_at: datetime.datetime | None
    id: str
    labels: JobReadLabels
    model_id: str
    phase: str
    priority: int
    progress: float
    queue: str
    recipe: None | Recipe
    started_at: datetime.datetime | None
    status: JobStatus
    target: Target
    time_limit_s: int | None
    eta_s: float | None | Unset = UNSET
    goal: Goal | None | Unset = UNSET
    parent_id: None | str | Unset = UNSET
    registered: None | Registered | Unset = UNSET
    waiting_reason: None | str | Unset = UNSET
    warnings: list[str] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.goal import Goal  # noqa: PLC0415
        from ..models.recipe import Recipe  # noqa: PLC0415
        from ..models.registered import Registered  # noqa: PLC0415

        artifact_bytes: int | None
        artifact_bytes = self.artifact_bytes

        artifact_format: None | str
        artifact_format = self.artifact_format

        artifact_sha256: None | str
        artifact_sha256 = self.artifact_sha256

        attempts = self.attempts

        created_at = self.created_at.isoformat()

        data = self.data.to_dict()

        error: None | str
        error = self.error

        finished_at: None | str
        if isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        id = self.id

        labels = self.labels.to_dict()

        model_id = self.model_id

        phase = self.phase

        priority = self.priority

        progress = self.progress

        queue = self.queue

        recipe: dict[str, Any] | None
        if isinstance(self.recipe, Recipe):
            recipe = self.recipe.to_dict()
        else:
            recipe = self.recipe

        started_at: None | str
        if isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        status = self.status.value

        target = self.target.to_dict()

        time_limit_s: int | None
        time_limit_s = self.time_limit_s

        eta_s: float | None | Unset
        if isinstance(self.eta_s, Unset):
            eta_s = UNSET
        else:
            eta_s = self.eta_s

        goal: dict[str, Any] | None | Unset
        if isinstance(self.goal, Unset):
            goal = UNSET
        elif isinstance(self.goal, Goal):
            goal = self.goal.to_dict()
        else:
            goal = self.goal

        parent_id: None | str | Unset
        if isinstance(self.parent_id, Unset):
            parent_id = UNSET
        else:
            parent_id = self.parent_id

        registered: dict[str, Any] | None | Unset
        if isinstance(self.registered, Unset):
            registered = UNSET
        elif isinstance(self.registered, Registered):
            registered = self.registered.to_dict()
        else:
            registered = self.registered

        waiting_reason: None | str | Unset
        if isinstance(self.waiting_reason, Unset):
            waiting_reason = UNSET
        else:
            waiting_reason = self.waiting_reason

        warnings: list[str] | Unset = UNSET
        if not isinstance(self.warnings, Unset):
            warnings = self.warnings

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "artifact_bytes": artifact_bytes,
                "artifact_format": artifact_format,
                "artifact_sha256": artifact_sha256,
                "attempts": attempts,
                "created_at": created_at,
                "data": data,
                "error": error,
                "finished_at": finished_at,
                "id": id,
                "labels": labels,
                "model_id": model_id,
                "phase": phase,
                "priority": priority,
                "progress": progress,
                "queue": queue,
                "recipe": recipe,
                "started_at": started_at,
                "status": status,
                "target": target,
                "time_limit_s": time_limit_s,
            }
        )
        if eta_s is not UNSET:
            field_dict["eta_s"] = eta_s
        if goal is not UNSET:
            field_dict["goal"] = goal
        if parent_id is not UNSET:
            field_dict["parent_id"] = parent_id
        if registered is not UNSET:
            field_dict["registered"] = registered
        if waiting_reason is not UNSET:
            field_dict["waiting_reason"] = waiting_reason
        if warnings is not UNSET:
            field_dict["warnings"] = warnings

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.goal import Goal  # noqa: PLC0415
        from ..models.job_read_data import JobReadData  # noqa: PLC0415
        from ..models.job_read_labels import JobReadLabels  # noqa: PLC0415
        from ..models.recipe import Recipe  # noqa: PLC0415
        from ..models.registered import Registered  # noqa: PLC0415
        from ..models.target import Target  # noqa: PLC0415

        d = dict(src_dict)

        def _parse_artifact_bytes(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        artifact_bytes = _parse_artifact_bytes(d.pop("artifact_bytes"))

        def _parse_artifact_format(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        artifact_format = _parse_artifact_format(d.pop("artifact_format"))

        def _parse_artifact_sha256(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        artifact_sha256 = _parse_artifact_sha256(d.pop("artifact_sha256"))

        attempts = d.pop("attempts")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        data = JobReadData.from_dict(d.pop("data"))

        def _parse_error(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        error = _parse_error(d.pop("error"))

        def _parse_finished_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)

                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        finished_at = _parse_finished_at(d.pop("finished_at"))

        id = d.pop("id")

        labels = JobReadLabels.from_dict(d.pop("labels"))

        model_id = d.pop("model_id")

        phase = d.pop("phase")

        priority = d.pop("priority")

        progress = d.pop("progress")

        queue = d.pop("queue")

        def _parse_recipe(data: object) -> None | Recipe:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                recipe_type_0 = Recipe.from_dict(data)

                return recipe_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Recipe, data)

        recipe = _parse_recipe(d.pop("recipe"))

        def _parse_started_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                started_at_type_0 = datetime.datetime.fromisoformat(data)

                return started_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        started_at = _parse_started_at(d.pop("started_at"))

        status = JobStatus(d.pop("status"))

        target = Target.from_dict(d.pop("target"))

        def _parse_time_limit_s(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        time_limit_s = _parse_time_limit_s(d.pop("time_limit_s"))

        def _parse_eta_s(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        eta_s = _parse_eta_s(d.pop("eta_s", UNSET))

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

        def _parse_parent_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        parent_id = _parse_parent_id(d.pop("parent_id", UNSET))

        def _parse_registered(data: object) -> None | Registered | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                registered_type_0 = Registered.from_dict(data)

                return registered_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Registered | Unset, data)

        registered = _parse_registered(d.pop("registered", UNSET))

        def _parse_waiting_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        waiting_reason = _parse_waiting_reason(d.pop("waiting_reason", UNSET))

        warnings = cast(list[str], d.pop("warnings", UNSET))

        job_read = cls(
            artifact_bytes=artifact_bytes,
            artifact_format=artifact_format,
            artifact_sha256=artifact_sha256,
            attempts=attempts,
            created_at=created_at,
            data=data,
            error=error,
            finished_at=finished_at,
            id=id,
            labels=labels,
            model_id=model_id,
            phase=phase,
            priority=priority,
            progress=progress,
            queue=queue,
            recipe=recipe,
            started_at=started_at,
            status=status,
            target=target,
            time_limit_s=time_limit_s,
            eta_s=eta_s,
            goal=goal,
            parent_id=parent_id,
            registered=registered,
            waiting_reason=waiting_reason,
            warnings=warnings,
        )

        job_read.additional_properties = d
        return job_read

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
