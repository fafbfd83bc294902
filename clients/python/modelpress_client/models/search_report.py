from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.search_report_stopped_by import SearchReportStoppedBy
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.candidate_result import CandidateResult
    from ..models.goal import Goal
    from ..models.original_figures import OriginalFigures


T = TypeVar("T", bound="SearchReport")


@_attrs_define
class SearchReport:
    """
    Attributes:
        budget (str): the budget in words, e.g. 'accuracy drop <= 0.005'
        candidates (list[CandidateResult]):
        chosen_job_id (None | str):
        goal (Goal): Exactly one budget. It is checked on ``data.eval``: accuracy needs labels there, the
            label-free budgets (cosine, top-1 agreement, KL) compare with the original's outputs, and
            a causal LM's perplexity reads its text (or the default held-out text).
        method (str): how the search went about it, in words
        rounds (int):
        stopped_by (SearchReportStoppedBy):
        wall_s (float):
        why (str): why the chosen candidate, or why none was
        workers (list[str]): the workers that ran candidates
        original (None | OriginalFigures | Unset):
        retimed (None | str | Unset): how the contenders were timed again before the choice, if they were
    """

    budget: str
    candidates: list[CandidateResult]
    chosen_job_id: None | str
    goal: Goal
    method: str
    rounds: int
    stopped_by: SearchReportStoppedBy
    wall_s: float
    why: str
    workers: list[str]
    original: None | OriginalFigures | Unset = UNSET
    retimed: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.original_figures import OriginalFigures  # noqa: PLC0415

        budget = self.budget

        candidates = []
        for candidates_item_data in self.candidates:
            candidates_item = candidates_item_data.to_dict()
            candidates.append(candidates_item)

        chosen_job_id: None | str
        chosen_job_id = self.chosen_job_id

        goal = self.goal.to_dict()

        method = self.method

        rounds = self.rounds

        stopped_by = self.stopped_by.value

        wall_s = self.wall_s

        why = self.why

        workers = self.workers

        original: dict[str, Any] | None | Unset
        if isinstance(self.original, Unset):
            original = UNSET
        elif isinstance(self.original, OriginalFigures):
            original = self.original.to_dict()
        else:
            original = self.original

        retimed: None | str | Unset
        if isinstance(self.retimed, Unset):
            retimed = UNSET
        else:
            retimed = self.retimed

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "budget": budget,
                "candidates": candidates,
                "chosen_job_id": chosen_job_id,
                "goal": goal,
                "method": method,
                "rounds": rounds,
                "stopped_by": stopped_by,
                "wall_s": wall_s,
                "why": why,
                "workers": workers,
            }
        )
        if original is not UNSET:
            field_dict["original"] = original
        if retimed is not UNSET:
            field_dict["retimed"] = retimed

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.candidate_result import CandidateResult  # noqa: PLC0415
        from ..models.goal import Goal  # noqa: PLC0415
        from ..models.original_figures import OriginalFigures  # noqa: PLC0415

        d = dict(src_dict)
        budget = d.pop("budget")

        candidates = []
        _candidates = d.pop("candidates")
        for candidates_item_data in _candidates:
            candidates_item = CandidateResult.from_dict(candidates_item_data)

            candidates.append(candidates_item)

        def _parse_chosen_job_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        chosen_job_id = _parse_chosen_job_id(d.pop("chosen_job_id"))

        goal = Goal.from_dict(d.pop("goal"))

        method = d.pop("method")

        rounds = d.pop("rounds")

        stopped_by = SearchReportStoppedBy(d.pop("stopped_by"))

        wall_s = d.pop("wall_s")

        why = d.pop("why")

        workers = cast(list[str], d.pop("workers"))

        def _parse_original(data: object) -> None | OriginalFigures | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                original_type_0 = OriginalFigures.from_dict(data)

                return original_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | OriginalFigures | Unset, data)

        original = _parse_original(d.pop("original", UNSET))

        def _parse_retimed(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        retimed = _parse_retimed(d.pop("retimed", UNSET))

        search_report = cls(
            budget=budget,
            candidates=candidates,
            chosen_job_id=chosen_job_id,
            goal=goal,
            method=method,
            rounds=rounds,
            stopped_by=stopped_by,
            wall_s=wall_s,
            why=why,
            workers=workers,
            original=original,
            retimed=retimed,
        )

        return search_report
