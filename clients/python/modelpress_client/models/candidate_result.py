from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.candidate_result_status import CandidateResultStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.candidate_result_recipe import CandidateResultRecipe


T = TypeVar("T", bound="CandidateResult")


@_attrs_define
class CandidateResult:
    """
    Attributes:
        job_id (str): the child job that built and measured this candidate
        purpose (str): why the search tried it, in words
        recipe (CandidateResultRecipe):
        round_ (int): the search round that proposed it (1 = first)
        status (CandidateResultStatus):
        accuracy (float | None | Unset): accuracy on data.eval (labelled only)
        accuracy_drop (float | None | Unset):
        budget_margin (float | Unset): added to an accuracy drop before the check: one standard error of the paired
            difference on data.eval, so a lucky draw of eval rows does not pass a candidate Default: 0.0.
        budget_value (float | None | Unset): the goal's budget figure measured
        bytes_ (int | None | Unset): the delivered archive's bytes
        cosine_min (float | None | Unset):
        error (None | str | Unset):
        kl_divergence (float | None | Unset):
        latency_p50_ms (float | None | Unset):
        meets_budget (bool | Unset):  Default: False.
        on_front (bool | Unset): no other candidate meeting the budget is smaller and faster Default: False.
        retimed_p50_ms (float | None | Unset): p50 latency timed again after the search, in alternating rounds beside
            the other contenders (the fastest candidates meeting the budget); a latency goal's choice rests on it where
            present, not on the figure timed while candidates ran side by side
        top1_agreement (float | None | Unset):
        worker (None | str | Unset): the worker that ran it
    """

    job_id: str
    purpose: str
    recipe: CandidateResultRecipe
    round_: int
    status: CandidateResultStatus
    accuracy: float | None | Unset = UNSET
    accuracy_drop: float | None | Unset = UNSET
    budget_margin: float | Unset = 0.0
    budget_value: float | None | Unset = UNSET
    bytes_: int | None | Unset = UNSET
    cosine_min: float | None | Unset = UNSET
    error: None | str | Unset = UNSET
    kl_divergence: float | None | Unset = UNSET
    latency_p50_ms: float | None | Unset = UNSET
    meets_budget: bool | Unset = False
    on_front: bool | Unset = False
    retimed_p50_ms: float | None | Unset = UNSET
    top1_agreement: float | None | Unset = UNSET
    worker: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        job_id = self.job_id

        purpose = self.purpose

        recipe = self.recipe.to_dict()

        round_ = self.round_

        status = self.status.value

        accuracy: float | None | Unset
        if isinstance(self.accuracy, Unset):
            accuracy = UNSET
        else:
            accuracy = self.accuracy

        accuracy_drop: float | None | Unset
        if isinstance(self.accuracy_drop, Unset):
            accuracy_drop = UNSET
        else:
            accuracy_drop = self.accuracy_drop

        budget_margin = self.budget_margin

        budget_value: float | None | Unset
        if isinstance(self.budget_value, Unset):
            budget_value = UNSET
        else:
            budget_value = self.budget_value

        bytes_: int | None | Unset
        if isinstance(self.bytes_, Unset):
            bytes_ = UNSET
        else:
            bytes_ = self.bytes_

        cosine_min: float | None | Unset
        if isinstance(self.cosine_min, Unset):
            cosine_min = UNSET
        else:
            cosine_min = self.cosine_min

        error: None | str | Unset
        if isinstance(self.error, Unset):
            error = UNSET
        else:
            error = self.error

        kl_divergence: float | None | Unset
        if isinstance(self.kl_divergence, Unset):
            kl_divergence = UNSET
        else:
            kl_divergence = self.kl_divergence

        latency_p50_ms: float | None | Unset
        if isinstance(self.latency_p50_ms, Unset):
            latency_p50_ms = UNSET
        else:
            latency_p50_ms = self.latency_p50_ms

        meets_budget = self.meets_budget

        on_front = self.on_front

        retimed_p50_ms: float | None | Unset
        if isinstance(self.retimed_p50_ms, Unset):
            retimed_p50_ms = UNSET
        else:
            retimed_p50_ms = self.retimed_p50_ms

        top1_agreement: float | None | Unset
        if isinstance(self.top1_agreement, Unset):
            top1_agreement = UNSET
        else:
            top1_agreement = self.top1_agreement

        worker: None | str | Unset
        if isinstance(self.worker, Unset):
            worker = UNSET
        else:
            worker = self.worker

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "job_id": job_id,
                "purpose": purpose,
                "recipe": recipe,
                "round": round_,
                "status": status,
            }
        )
        if accuracy is not UNSET:
            field_dict["accuracy"] = accuracy
        if accuracy_drop is not UNSET:
            field_dict["accuracy_drop"] = accuracy_drop
        if budget_margin is not UNSET:
            field_dict["budget_margin"] = budget_margin
        if budget_value is not UNSET:
            field_dict["budget_value"] = budget_value
        if bytes_ is not UNSET:
            field_dict["bytes"] = bytes_
        if cosine_min is not UNSET:
            field_dict["cosine_min"] = cosine_min
        if error is not UNSET:
            field_dict["error"] = error
        if kl_divergence is not UNSET:
            field_dict["kl_divergence"] = kl_divergence
        if latency_p50_ms is not UNSET:
            field_dict["latency_p50_ms"] = latency_p50_ms
        if meets_budget is not UNSET:
            field_dict["meets_budget"] = meets_budget
        if on_front is not UNSET:
            field_dict["on_front"] = on_front
        if retimed_p50_ms is not UNSET:
            field_dict["retimed_p50_ms"] = retimed_p50_ms
        if top1_agreement is not UNSET:
            field_dict["top1_agreement"] = top1_agreement
        if worker is not UNSET:
            field_dict["worker"] = worker

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.candidate_result_recipe import CandidateResultRecipe  # noqa: PLC0415

        d = dict(src_dict)
        job_id = d.pop("job_id")

        purpose = d.pop("purpose")

        recipe = CandidateResultRecipe.from_dict(d.pop("recipe"))

        round_ = d.pop("round")

        status = CandidateResultStatus(d.pop("status"))

        def _parse_accuracy(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        accuracy = _parse_accuracy(d.pop("accuracy", UNSET))

        def _parse_accuracy_drop(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        accuracy_drop = _parse_accuracy_drop(d.pop("accuracy_drop", UNSET))

        budget_margin = d.pop("budget_margin", UNSET)

        def _parse_budget_value(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        budget_value = _parse_budget_value(d.pop("budget_value", UNSET))

        def _parse_bytes_(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        bytes_ = _parse_bytes_(d.pop("bytes", UNSET))

        def _parse_cosine_min(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        cosine_min = _parse_cosine_min(d.pop("cosine_min", UNSET))

        def _parse_error(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        error = _parse_error(d.pop("error", UNSET))

        def _parse_kl_divergence(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        kl_divergence = _parse_kl_divergence(d.pop("kl_divergence", UNSET))

        def _parse_latency_p50_ms(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        latency_p50_ms = _parse_latency_p50_ms(d.pop("latency_p50_ms", UNSET))

        meets_budget = d.pop("meets_budget", UNSET)

        on_front = d.pop("on_front", UNSET)

        def _parse_retimed_p50_ms(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        retimed_p50_ms = _parse_retimed_p50_ms(d.pop("retimed_p50_ms", UNSET))

        def _parse_top1_agreement(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        top1_agreement = _parse_top1_agreement(d.pop("top1_agreement", UNSET))

        def _parse_worker(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        worker = _parse_worker(d.pop("worker", UNSET))

        candidate_result = cls(
            job_id=job_id,
            purpose=purpose,
            recipe=recipe,
            round_=round_,
            status=status,
            accuracy=accuracy,
            accuracy_drop=accuracy_drop,
            budget_margin=budget_margin,
            budget_value=budget_value,
            bytes_=bytes_,
            cosine_min=cosine_min,
            error=error,
            kl_divergence=kl_divergence,
            latency_p50_ms=latency_p50_ms,
            meets_budget=meets_budget,
            on_front=on_front,
            retimed_p50_ms=retimed_p50_ms,
            top1_agreement=top1_agreement,
            worker=worker,
        )

        return candidate_result
