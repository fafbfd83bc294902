"""A candidate's figures read from its report, the budget check, the front and the choice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from compressor.measure.fidelity import paired_standard_error
from compressor.search.goal import Goal
from compressor.search.report import CandidateResult

_BUDGET_WORDS = {
    "max_accuracy_drop": "accuracy drop <= {:g}",
    "min_cosine": "minimum cosine >= {:g}",
    "min_top1_agreement": "top-1 agreement >= {:g}",
    "max_kl_divergence": "KL divergence <= {:g}",
    "max_perplexity_increase": "perplexity increase <= {:g}",
}


def budget_words(goal: Goal) -> str:
    name, limit = goal.budget
    words = _BUDGET_WORDS[name].format(limit) + " on data.eval"
    if name == "max_perplexity_increase":
        words += " (or the default held-out text)"
    if name == "max_accuracy_drop":
        words += ", plus one standard error of the paired difference"
    return words


def figures(goal: Goal, report: dict[str, Any]) -> dict[str, Any]:
    """The CandidateResult fields a succeeded child's report gives, the budget check included."""
    fidelity = report.get("fidelity") or {}
    before, after = fidelity.get("accuracy_original"), fidelity.get("accuracy_compressed")
    drop = before - after if before is not None and after is not None else None
    name, limit = goal.budget
    margin = _accuracy_margin(fidelity) if name == "max_accuracy_drop" else 0.0
    value = {
        "max_accuracy_drop": drop,
        "min_cosine": fidelity.get("cosine_min"),
        "min_top1_agreement": fidelity.get("top1_agreement"),
        "max_kl_divergence": fidelity.get("kl_divergence"),
        "max_perplexity_increase": ((report.get("llm") or {}).get("perplexity") or {}).get(
            "relative_increase"
        ),
    }[name]
    # A hair of float noise must not turn "no accuracy lost" into a miss.
    meets = value is not None and (
        value + margin <= limit + 1e-9 if name.startswith("max_") else value >= limit - 1e-9
    )
    artifact = report.get("artifact") or {}
    return {
        "bytes": artifact.get("bytes"),
        "latency_p50_ms": (report.get("compressed") or {}).get("latency_p50_ms"),
        "cosine_min": fidelity.get("cosine_min"),
        "top1_agreement": fidelity.get("top1_agreement"),
        "kl_divergence": fidelity.get("kl_divergence"),
        "accuracy": after,
        "accuracy_drop": drop,
        "budget_value": value,
        "budget_margin": round(margin, 6),
        "meets_budget": meets,
    }


def _accuracy_margin(fidelity: dict[str, Any]) -> float:
    rows = int(fidelity.get("samples") or 0)
    agreement = fidelity.get("top1_agreement")
    if rows <= 0 or agreement is None:
        return 0.0
    return paired_standard_error(float(agreement), rows)


def _sized(c: CandidateResult) -> bool:
    return c.meets_budget and c.bytes is not None and c.latency_p50_ms is not None


def mark_front(candidates: Sequence[CandidateResult]) -> list[CandidateResult]:
    """on_front for each candidate meeting the budget that no other such one beats on both
    bytes and latency."""
    fine = [c for c in candidates if _sized(c)]

    def dominated(c: CandidateResult) -> bool:
        return any(
            o is not c
            and o.bytes <= c.bytes  # type: ignore[operator]
            and o.latency_p50_ms <= c.latency_p50_ms  # type: ignore[operator]
            and (o.bytes < c.bytes or o.latency_p50_ms < c.latency_p50_ms)  # type: ignore[operator]
            for o in fine
        )

    return [c.model_copy(update={"on_front": _sized(c) and not dominated(c)}) for c in candidates]


# Contenders re-timed before a latency choice: the fastest few meeting the budget. Timed while
# other candidates ran beside them, any of them may in truth be the fastest.
RETIME_MAX = 3


def contenders(candidates: Sequence[CandidateResult]) -> list[str]:
    """The job ids whose latencies decide a latency choice, fastest first."""
    fine = sorted((c for c in candidates if _sized(c)), key=lambda c: c.latency_p50_ms or 0.0)
    return [c.job_id for c in fine[:RETIME_MAX]]


def _measured(c: CandidateResult) -> str:
    return "measured " + (f"{c.budget_value:.4g}" if c.budget_value is not None else "n/a")


def choose(goal: Goal, candidates: Sequence[CandidateResult]) -> tuple[CandidateResult | None, str]:
    """The best candidate on the goal's objective among those meeting the budget, and why."""
    fine = [c for c in candidates if _sized(c)]
    budget = budget_words(goal)
    if not fine:
        tried = len(candidates)
        return None, f"none of the {tried} candidate(s) met the budget ({budget})"
    if goal.objective == "size":
        best = min(fine, key=lambda c: (c.bytes, c.latency_p50_ms))
        why = (
            f"the smallest download ({best.bytes:,} bytes) of the {len(fine)} candidate(s) "
            f"meeting the budget ({budget}: {_measured(best)})"
        )
    else:
        retimed = [c for c in fine if c.retimed_p50_ms is not None]
        if len(retimed) >= 2:
            best = min(retimed, key=lambda c: (c.retimed_p50_ms, c.bytes))
            why = (
                f"the lowest p50 latency ({best.retimed_p50_ms:.4g} ms, re-timed in turns with "
                f"{len(retimed) - 1} other contender(s)) of the {len(fine)} candidate(s) "
                f"meeting the budget ({budget}: {_measured(best)})"
            )
            return best, why
        best = min(fine, key=lambda c: (c.latency_p50_ms, c.bytes))
        why = (
            f"the lowest p50 latency ({best.latency_p50_ms:.4g} ms) of the {len(fine)} "
            f"candidate(s) meeting the budget ({budget}: {_measured(best)})"
        )
    return best, why
