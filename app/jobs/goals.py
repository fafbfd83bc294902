"""Submission checks for goal-driven jobs: the search must have something to try, and the
budget something to be checked on."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app import errors
from app.datasets import service as datasets_service
from compressor.formats.detect import ModelKind
from compressor.llm.inspect import LLM_RUNTIMES
from compressor.search.goal import Goal
from compressor.search.planner import SearchContext, applicable, first_round
from compressor.target import Target


def _applicable(
    goal: Goal,
    kind: ModelKind,
    target: Target,
    data: dict[str, str],
    inspection: dict[str, Any] | None,
) -> int:
    proposals = first_round(goal, SearchContext.of_job(kind, target, data, inspection))
    return len(applicable(proposals, kind, target, inspection))


def has_candidates(
    goal: Goal,
    kind: ModelKind,
    target: Target,
    data: dict[str, str],
    inspection: dict[str, Any] | None = None,
) -> bool:
    """Whether the search's first round has something to try on this target."""
    return bool(_applicable(goal, kind, target, data, inspection))


def _check_llm_budget(goal: Goal, *, causal_lm: bool, target: Target) -> None:
    name, _ = goal.budget
    if causal_lm and name != "max_perplexity_increase":
        raise errors.InvalidRecipe(
            f"a goal over a causal LM is judged on perplexity: give max_perplexity_increase "
            f"(e.g. 0.05 for 5%) instead of {name}"
        )
    if not causal_lm and name == "max_perplexity_increase":
        raise errors.InvalidRecipe(
            "max_perplexity_increase applies to causal LMs (a config.json with a *ForCausalLM "
            "architecture); for this model give max_accuracy_drop, min_cosine, "
            "min_top1_agreement or max_kl_divergence"
        )
    if causal_lm and target.runtime not in LLM_RUNTIMES:
        raise errors.InvalidRecipe(
            "a goal over a causal LM searches the formats LLM runtimes serve: set "
            "target.runtime to 'vllm', 'onnxruntime-genai' or 'llama.cpp'"
        )


def check(
    goal: Goal,
    kind: ModelKind,
    target: Target,
    data: dict[str, str],
    *,
    inspection: dict[str, Any] | None,
) -> None:
    causal_lm = (inspection or {}).get("kind") == "causal_lm"
    _check_llm_budget(goal, causal_lm=causal_lm, target=target)
    if not _applicable(goal, kind, target, data, inspection):
        allowed = ", ".join(goal.techniques) if goal.techniques else "every technique"
        raise errors.InvalidRecipe(
            f"the search has no candidate for this model on {target.runtime}/{target.device} "
            f"with {allowed}: allow other techniques, or change the target"
        )


def check_budget_data(session: Session, goal: Goal, data: dict[str, str]) -> None:
    """An accuracy budget needs labels in data.eval (the other budgets compare outputs)."""
    if goal.max_accuracy_drop is None:
        return
    dataset = datasets_service.get_dataset(session, dataset_id=data["eval"])
    if not (dataset.inspection or {}).get("has_labels"):
        raise errors.InvalidDataset(
            "max_accuracy_drop is checked on data.eval's 'labels', and that dataset has none: "
            "upload it with labels, or use min_cosine, min_top1_agreement or max_kl_divergence"
        )


def default_time_limit(goal: Goal) -> int:
    """The last round may start just before the time budget ends: give it that long again."""
    return 2 * goal.time_budget_s + 300
