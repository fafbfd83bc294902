"""The search's part of a goal job's report: every candidate, the front, the choice and why."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from compressor.search.goal import Goal


class CandidateResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(description="the child job that built and measured this candidate")
    round: int = Field(description="the search round that proposed it (1 = first)")
    purpose: str = Field(description="why the search tried it, in words")
    recipe: dict[str, Any]
    status: Literal["succeeded", "failed", "cancelled"]
    error: str | None = None
    worker: str | None = Field(None, description="the worker that ran it")
    bytes: int | None = Field(None, description="the delivered archive's bytes")
    latency_p50_ms: float | None = None
    cosine_min: float | None = None
    top1_agreement: float | None = None
    kl_divergence: float | None = None
    accuracy: float | None = Field(None, description="accuracy on data.eval (labelled only)")
    accuracy_drop: float | None = None
    budget_value: float | None = Field(None, description="the goal's budget figure measured")
    budget_margin: float = Field(
        0.0,
        description="added to an accuracy drop before the check: one standard error of the "
        "paired difference on data.eval, so a lucky draw of eval rows does not pass a candidate",
    )
    meets_budget: bool = False
    retimed_p50_ms: float | None = Field(
        None,
        description="p50 latency timed again after the search, in alternating rounds beside "
        "the other contenders (the fastest candidates meeting the budget); a latency goal's "
        "choice rests on it where present, not on the figure timed while candidates ran side "
        "by side",
    )
    on_front: bool = Field(
        False, description="no other candidate meeting the budget is smaller and faster"
    )


class OriginalFigures(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bytes: int = Field(description="the fp32 baseline's bytes (as the reports compare)")
    latency_p50_ms: float
    accuracy: float | None = None


class SearchReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    goal: Goal
    budget: str = Field(description="the budget in words, e.g. 'accuracy drop <= 0.005'")
    method: str = Field(description="how the search went about it, in words")
    rounds: int
    candidates: list[CandidateResult]
    chosen_job_id: str | None
    why: str = Field(description="why the chosen candidate, or why none was")
    original: OriginalFigures | None = None
    workers: list[str] = Field(description="the workers that ran candidates")
    wall_s: float
    stopped_by: Literal["converged", "round limit", "time budget", "no candidates left"]
    retimed: str | None = Field(
        None, description="how the contenders were timed again before the choice, if they were"
    )
