"""The goal search's planning and choosing, on outcomes stated by hand (the walk itself runs
for real in tests/e2e/test_goal_jobs.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from compressor.search.goal import Goal
from compressor.search.outcome import choose, contenders, figures, mark_front
from compressor.search.planner import (
    Outcome,
    Proposal,
    SearchContext,
    _stages,
    first_round,
    next_round,
)
from compressor.search.report import CandidateResult

CPU = SearchContext(
    kind="architecture", runtime="onnxruntime", device="cpu", has_train=True, has_calibration=False
)
SIZE = Goal(objective="size", max_accuracy_drop=0.005)


def _techniques(proposal: Proposal) -> list[str]:
    return [s.technique for s in proposal.recipe.steps]


def test_a_goal_takes_exactly_one_budget() -> None:
    with pytest.raises(ValidationError, match="exactly one budget"):
        Goal(objective="size")
    with pytest.raises(ValidationError, match="exactly one budget"):
        Goal(objective="size", min_cosine=0.99, max_accuracy_drop=0.01)


@pytest.mark.parametrize("density", [0.5, 0.25, 0.1, 0.04, 0.01])
def test_pruning_goes_in_stages_each_keeping_at_least_a_third(density: float) -> None:
    stages = _stages(density)
    assert stages == sorted(stages) and stages[-1] == pytest.approx(1 - density, abs=1e-4)
    kept = [1.0] + [1 - s for s in stages]
    assert all(
        after / before >= 1 / 3 - 1e-3 for before, after in zip(kept, kept[1:], strict=False)
    )


def test_first_round_brackets_density_and_heals_only_with_training_data() -> None:
    healed = first_round(SIZE, CPU)
    assert [p.knob for p in healed] == [None, None, "density", "density", "density"]
    assert all(_techniques(p)[-1] == "quantization" for p in healed)
    assert "distillation" in _techniques(healed[-1])
    unhealed = first_round(SIZE, SearchContext(**{**CPU.__dict__, "has_train": False}))
    assert all("distillation" not in _techniques(p) for p in unhealed)


def test_allowed_techniques_bound_the_candidates() -> None:
    only_quant = Goal(objective="size", min_cosine=0.99, techniques=["quantization"])
    assert {t for p in first_round(only_quant, CPU) for t in _techniques(p)} == {"quantization"}


def _outcomes(goal: Goal, met: dict[float, bool]) -> list[Outcome]:
    proposals = {p.value: p for p in first_round(goal, CPU) if p.value is not None}
    return [Outcome(proposals[v], ok) for v, ok in met.items()]


def test_next_round_cuts_the_bracket_into_thirds_then_stops() -> None:
    outcomes = _outcomes(SIZE, {0.25: True, 0.1: True, 0.04: False})
    values = [p.value for p in next_round(SIZE, CPU, outcomes)]
    assert values and all(0.04 < v < 0.1 for v in values if v is not None), values
    closed = outcomes + [
        Outcome(p, True) for p in next_round(SIZE, CPU, outcomes) if p.value and p.value > 0.06
    ]
    narrower = [p.value for p in next_round(SIZE, CPU, closed)]
    assert all(v is not None and v < 0.07 for v in narrower), narrower


def test_next_round_goes_further_when_everything_met_the_budget() -> None:
    outcomes = _outcomes(SIZE, {0.25: True, 0.1: True, 0.04: True})
    values = [p.value for p in next_round(SIZE, CPU, outcomes)]
    assert values and all(v is not None and v < 0.04 for v in values), values


def test_a_closed_size_bracket_tries_weight_sharing_on_the_sparsest_that_met() -> None:
    outcomes = _outcomes(SIZE, {0.25: True, 0.1: True, 0.04: False})
    low, high = (0.04, 0.1)
    for p in next_round(SIZE, CPU, outcomes):  # close the bracket: 0.05 met
        outcomes.append(Outcome(p, p.value is not None and p.value >= 0.05))
    while (more := next_round(SIZE, CPU, outcomes)) and more[0].knob == "density":
        outcomes += [Outcome(p, p.value is not None and p.value >= 0.05) for p in more]
    (shared,) = more
    best = min(
        o.proposal.value for o in outcomes if o.meets_budget and o.proposal.knob == "density"
    )
    assert low < best < high and shared.knob == "shared" and shared.value == 16
    steps = shared.recipe.steps
    assert [s.technique for s in steps][-2:] == ["weight_sharing", "quantization"]
    assert steps[-2].clusters == 16 and f"keep {best:.3g}" in shared.purpose
    (wider,) = next_round(SIZE, CPU, [*outcomes, Outcome(shared, False)])
    assert wider.value == 64
    assert next_round(SIZE, CPU, [*outcomes, Outcome(shared, True)]) == []
    no_sharing = Goal(**{**SIZE.model_dump(), "techniques": ["pruning", "quantization"]})
    assert next_round(no_sharing, CPU, outcomes) == []


def _report(drop: float, agreement: float, size: int, ms: float) -> dict[str, object]:
    return {
        "fidelity": {
            "samples": 400,
            "cosine_min": 0.99,
            "cosine_mean": 0.999,
            "max_abs_error": 0.1,
            "top1_agreement": agreement,
            "accuracy_original": 0.95,
            "accuracy_compressed": 0.95 - drop,
        },
        "artifact": {"bytes": size},
        "compressed": {"latency_p50_ms": ms},
    }


def test_an_accuracy_budget_counts_one_standard_error_of_the_eval_rows() -> None:
    goal = Goal(objective="size", max_accuracy_drop=0.01)
    agreeing = figures(goal, _report(0.0025, 0.9975, 100, 1.0))  # se 0.0025: 0.005 <= 0.01
    shaky = figures(goal, _report(0.0025, 0.95, 100, 1.0))  # se 0.011: misses
    assert agreeing["meets_budget"] and not shaky["meets_budget"]
    assert shaky["budget_margin"] == pytest.approx((0.05 / 400) ** 0.5, rel=1e-3)


def _candidate(job: str, size: int, ms: float, ok: bool) -> CandidateResult:
    return CandidateResult(
        job_id=job, round=1, purpose="", recipe={}, status="succeeded",
        bytes=size, latency_p50_ms=ms, meets_budget=ok,
    )  # fmt: skip


def test_front_and_choice_follow_the_objective() -> None:
    candidates = mark_front(
        [
            _candidate("small", 100, 2.0, True),
            _candidate("fast", 300, 1.0, True),
            _candidate("beaten", 400, 3.0, True),
            _candidate("smallest-but-missed", 50, 0.5, False),
        ]
    )
    assert [c.job_id for c in candidates if c.on_front] == ["small", "fast"]
    by_size, why = choose(Goal(objective="size", min_cosine=0.9), candidates)
    by_speed, _ = choose(Goal(objective="latency", min_cosine=0.9), candidates)
    assert by_size is not None and by_size.job_id == "small" and "smallest" in why
    assert by_speed is not None and by_speed.job_id == "fast"
    none, why_none = choose(SIZE, [candidates[-1]])
    assert none is None and "none of the 1" in why_none


def test_a_latency_choice_rests_on_the_re_timed_contenders() -> None:
    candidates = mark_front(
        [
            _candidate("fast-under-load", 300, 1.0, True),
            _candidate("close", 200, 1.2, True),
            _candidate("small", 100, 2.0, True),
            _candidate("beaten", 400, 3.0, True),
            _candidate("missed", 50, 0.5, False),
        ]
    )
    # The fastest three meeting the budget, front or not; never one that missed it.
    assert contenders(candidates) == ["fast-under-load", "close", "small"]
    latency = Goal(objective="latency", min_cosine=0.9)
    retimed = {"fast-under-load": 1.1, "close": 0.9, "small": 1.9}
    again = [
        c.model_copy(update={"retimed_p50_ms": retimed[c.job_id]}) if c.job_id in retimed else c
        for c in candidates
    ]
    best, why = choose(latency, again)
    assert best is not None and best.job_id == "close" and "re-timed" in why
    # Without re-timed figures, the children's own figures decide.
    first, _ = choose(latency, candidates)
    assert first is not None and first.job_id == "fast-under-load"


def test_latency_walk_doubles_float_fallback_until_met_then_bisects_down() -> None:
    goal = Goal(objective="latency", min_cosine=0.995, techniques=["quantization"])
    start = [p for p in first_round(goal, CPU) if p.knob == "fallback"]
    assert [p.value for p in start] == [0]
    walked = [Outcome(start[0], False)]
    seen = []
    for _ in range(40):  # the budget is met from 5 MatMuls kept float upwards
        proposals = next_round(goal, CPU, walked)
        if not proposals:
            break
        value = int(proposals[0].value or 0)
        seen.append(value)
        walked.append(Outcome(proposals[0], value >= 5))
    assert seen == [2, 4, 8, 6, 5], seen
    assert all("kept in float" in o.proposal.purpose for o in walked[1:])


def test_structured_walk_stops_stepping_back_below_a_useful_amount() -> None:
    goal = Goal(objective="latency", min_cosine=0.995, techniques=["structured_pruning"])
    proposals = {p.value: p for p in first_round(goal, CPU)}
    walked = [Outcome(proposals[0.25], False), Outcome(proposals[0.5], False)]
    values = []
    while proposals := {p.value: p for p in next_round(goal, CPU, walked)}:
        assert len(values) < 10, values
        values += list(proposals)
        walked += [Outcome(p, False) for p in proposals.values()]
    assert values == [0.125, 0.0625], values


LLM_GOAL = Goal(objective="size", max_perplexity_increase=0.05)
LLAMA_INSPECTION = {
    "kind": "causal_lm",
    "causal_lm": {"architecture": "LlamaForCausalLM", "weight_bytes": 1000},
}


@pytest.mark.parametrize("runtime", ["vllm", "onnxruntime-genai", "llama.cpp"])
def test_a_causal_lm_goal_tries_what_its_runtime_serves_in_one_round(runtime: str) -> None:
    from compressor.recipe import check_recipe_for_kind
    from compressor.target import Target

    ctx = SearchContext(
        kind="hf", runtime=runtime, device="cpu", has_train=False, has_calibration=True,
        causal_lm=True,
    )  # fmt: skip
    proposals = first_round(LLM_GOAL, ctx)
    # each runtime's formats, and on vllm and llama.cpp the sensitive linears at 8 bits too
    assert len(proposals) == (3 if runtime == "onnxruntime-genai" else 4), proposals
    assert len({p.purpose for p in proposals}) == len(proposals)
    target = Target(runtime=runtime)  # type: ignore[arg-type]
    for p in proposals:
        (step,) = p.recipe.steps
        assert step.technique == "quantization" and step.method == "auto"  # type: ignore[union-attr]
        check_recipe_for_kind(p.recipe, "hf", target, inspection=LLAMA_INSPECTION)
    outcomes = [Outcome(p, True) for p in proposals]
    assert next_round(LLM_GOAL, ctx, outcomes) == []
    assert first_round(Goal(**{**LLM_GOAL.model_dump(), "techniques": ["pruning"]}), ctx) == []


def test_the_perplexity_budget_reads_the_llm_report() -> None:
    report = {
        "artifact": {"bytes": 100},
        "compressed": {"latency_p50_ms": 12.5},
        "llm": {"perplexity": {"relative_increase": 0.031}},
    }
    got = figures(LLM_GOAL, report)
    assert got["budget_value"] == 0.031 and got["meets_budget"] and got["latency_p50_ms"] == 12.5
    worse = {**report, "llm": {"perplexity": {"relative_increase": 0.07}}}
    assert not figures(LLM_GOAL, worse)["meets_budget"]
