"""Submission checks for goal-driven jobs: the search must have something to try, and the
budget something to be checked on."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app import errors
from app.datasets import service as datasets_service
from compressor.formats.detect import ModelKind
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
    proposals = first_round(goal, SearchContext.of_job(kind, target, data))
    return len(applicable(proposals, kind, target, inspection))


def has_candidates(goal: Goal, kind: ModelKind, target: Target, data: dict[str, str]) -> bool:
    """Whether the search's first round has something to try on this target."""
    return bool(_applicable(goal, kind, target, data, None))


def check(
    goal: Goal,
    kind: ModelKind,
    target: Target,
    data: dict[str, str],
    *,
    inspection: dict[str, Any] | None,
) -> None:
    if (inspection or {}).get("kind") == "causal_lm":
        raise errors.InvalidRecipe(
            "goal searches over causal LMs are not built yet: submit a recipe with one "
            "quantization step (int4_weight_only, method auto) on target.runtime "
            "'onnxruntime-genai', 'vllm' or 'llama.cpp'; its report gives perplexity and greedy "
            "agreement"
        )
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
