from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.goal_objective import GoalObjective
from ..models.goal_techniques_type_0_item import GoalTechniquesType0Item
from ..types import UNSET, Unset

T = TypeVar("T", bound="Goal")


@_attrs_define
class Goal:
    """Exactly one budget. It is checked on ``data.eval``: accuracy needs labels there, the
    label-free budgets (cosine, top-1 agreement, KL) compare with the original's outputs, and
    a causal LM's perplexity reads its text (or the default held-out text).

        Attributes:
            objective (GoalObjective): 'size': the smallest download; 'latency': the fastest p50 on the target
            max_accuracy_drop (float | None | Unset): accuracy lost on data.eval, as a fraction (0.005)
            max_kl_divergence (float | None | Unset): mean KL divergence from the original's softmax on data.eval
            max_perplexity_increase (float | None | Unset): causal LMs: perplexity's relative increase (0.05 = 5%) on
                data.eval's text, or on the default held-out English text when no data.eval is given
            min_cosine (float | None | Unset): lowest output cosine to the original on data.eval
            min_top1_agreement (float | None | Unset): share of data.eval rows with the original's top-1
            techniques (list[GoalTechniquesType0Item] | None | Unset): the techniques candidates may use (default: every one
                that applies)
            time_budget_s (int | Unset): no new candidates start after this; the best one found by then is chosen Default:
                1800.
    """

    objective: GoalObjective
    max_accuracy_drop: float | None | Unset = UNSET
    max_kl_divergence: float | None | Unset = UNSET
    max_perplexity_increase: float | None | Unset = UNSET
    min_cosine: float | None | Unset = UNSET
    min_top1_agreement: float | None | Unset = UNSET
    techniques: list[GoalTechniquesType0Item] | None | Unset = UNSET
    time_budget_s: int | Unset = 1800

    def to_dict(self) -> dict[str, Any]:
        objective = self.objective.value

        max_accuracy_drop: float | None | Unset
        if isinstance(self.max_accuracy_drop, Unset):
            max_accuracy_drop = UNSET
        else:
            max_accuracy_drop = self.max_accuracy_drop

        max_kl_divergence: float | None | Unset
        if isinstance(self.max_kl_divergence, Unset):
            max_kl_divergence = UNSET
        else:
            max_kl_divergence = self.max_kl_divergence

        max_perplexity_increase: float | None | Unset
        if isinstance(self.max_perplexity_increase, Unset):
            max_perplexity_increase = UNSET
        else:
            max_perplexity_increase = self.max_perplexity_increase

        min_cosine: float | None | Unset
        if isinstance(self.min_cosine, Unset):
            min_cosine = UNSET
        else:
            min_cosine = self.min_cosine

        min_top1_agreement: float | None | Unset
        if isinstance(self.min_top1_agreement, Unset):
            min_top1_agreement = UNSET
        else:
            min_top1_agreement = self.min_top1_agreement

        techniques: list[str] | None | Unset
        if isinstance(self.techniques, Unset):
            techniques = UNSET
        elif isinstance(self.techniques, list):
            techniques = []
            for techniques_type_0_item_data in self.techniques:
                techniques_type_0_item = techniques_type_0_item_data.value
                techniques.append(techniques_type_0_item)

        else:
            techniques = self.techniques

        time_budget_s = self.time_budget_s

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "objective": objective,
            }
        )
        if max_accuracy_drop is not UNSET:
            field_dict["max_accuracy_drop"] = max_accuracy_drop
        if max_kl_divergence is not UNSET:
            field_dict["max_kl_divergence"] = max_kl_divergence
        if max_perplexity_increase is not UNSET:
            field_dict["max_perplexity_increase"] = max_perplexity_increase
        if min_cosine is not UNSET:
            field_dict["min_cosine"] = min_cosine
        if min_top1_agreement is not UNSET:
            field_dict["min_top1_agreement"] = min_top1_agreement
        if techniques is not UNSET:
            field_dict["techniques"] = techniques
        if time_budget_s is not UNSET:
            field_dict["time_budget_s"] = time_budget_s

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        objective = GoalObjective(d.pop("objective"))

        def _parse_max_accuracy_drop(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        max_accuracy_drop = _parse_max_accuracy_drop(d.pop("max_accuracy_drop", UNSET))

        def _parse_max_kl_divergence(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        max_kl_divergence = _parse_max_kl_divergence(d.pop("max_kl_divergence", UNSET))

        def _parse_max_perplexity_increase(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        max_perplexity_increase = _parse_max_perplexity_increase(d.pop("max_perplexity_increase", UNSET))

        def _parse_min_cosine(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        min_cosine = _parse_min_cosine(d.pop("min_cosine", UNSET))

        def _parse_min_top1_agreement(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        min_top1_agreement = _parse_min_top1_agreement(d.pop("min_top1_agreement", UNSET))

        def _parse_techniques(data: object) -> list[GoalTechniquesType0Item] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                techniques_type_0 = []
                _techniques_type_0 = data
                for techniques_type_0_item_data in _techniques_type_0:
                    techniques_type_0_item = GoalTechniquesType0Item(techniques_type_0_item_data)

                    techniques_type_0.append(techniques_type_0_item)

                return techniques_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[GoalTechniquesType0Item] | None | Unset, data)

        techniques = _parse_techniques(d.pop("techniques", UNSET))

        time_budget_s = d.pop("time_budget_s", UNSET)

        goal = cls(
            objective=objective,
            max_accuracy_drop=max_accuracy_drop,
            max_kl_divergence=max_kl_divergence,
            max_perplexity_increase=max_perplexity_increase,
            min_cosine=min_cosine,
            min_top1_agreement=min_top1_agreement,
            techniques=techniques,
            time_budget_s=time_budget_s,
        )

        return goal
