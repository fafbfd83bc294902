"""A goal job's search: candidates fan out as child jobs, the best one becomes the artifact.

Each candidate is an ordinary job row (``parent_id`` = the goal job) sent to the pool's queue,
so any worker of the pool may run it. The goal job's own process does not sit idle while it
waits: it claims queued candidates itself (the claim is the same conditional update every
worker uses, so each candidate runs once) and runs them under its own worker's name. With two
workers, both run candidates.

The nesting is deliberate: ``execute_job`` here is the same supervisor a Celery task runs, so a
candidate the goal job runs starts its own job process (one level down, never deeper: a
candidate has a recipe, not a goal), with its own lease, time limit and cancel checks. That
process dies with the goal job's process (``die_with_parent``), and the claim's lease lets
another worker re-run a candidate whose runner was lost.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.db.models import Job, JobStatus
from app.jobs import lifecycle
from app.jobs import repository as jobs_repository
from app.jobs.errors import JobError
from app.jobs.lifecycle import RunInputs, owner_node
from app.jobs.phases import RETIMING
from compressor.measure.retime import ROUNDS, retime
from compressor.pipeline import MeasuredOriginal
from compressor.search.goal import Goal
from compressor.search.outcome import (
    RETIME_MAX,
    budget_words,
    choose,
    contenders,
    figures,
    mark_front,
)
from compressor.search.planner import (
    MAX_ROUNDS,
    Outcome,
    Proposal,
    SearchContext,
    applicable,
    first_round,
    next_round,
)
from compressor.search.report import CandidateResult, OriginalFigures, SearchReport
from compressor.target import Target
from workers import spare
from workers.execute import execute_job
from workers.job_run import JobRun, in_transaction, measure_settings, publish_copy, reading
from workers.unpacking import fetch_model

log = logging.getLogger("modelpress.search")
POLL_S = 1.0
METHOD = (
    "Round 1 measures quantization alone and brackets the objective's knob (size: the share of "
    "weights kept by iterative global magnitude pruning, each stage healed by distillation from "
    "the original when there is training data, dead units removed, then int8; latency: the "
    "share of units removed by structured pruning, healed, then quantized, beside low-rank "
    "factorization and, with training data, a derived half-size student). For latency, int8 "
    "with the MatMuls of largest measured int8 error kept in float is walked too: their number "
    "doubles from 0 until the budget is met, then is bisected to the fewest. Each later round "
    "cuts the bracket between the most compressed candidate that met the budget and the least "
    "compressed one that missed it into thirds, until its ends are within 25% of each other; "
    "for size, the sparsest density that met the budget is then tried with weight sharing (16 "
    "values per tensor, then 64 if 16 missed), kept only if it still meets the budget. The "
    f"search stops there, after {MAX_ROUNDS} rounds or when the time budget is spent. Every "
    "candidate is a child job, "
    "measured on data.eval like any job; the budget is checked there. The original is measured "
    "once, by the goal job before the fan-out, and every candidate reuses that measurement. For "
    "a latency goal, the fastest candidates meeting the budget are timed again at the end, side "
    "by side in alternating rounds, and those figures decide."
)


class NoCandidateMetBudget(JobError):
    pass


def _recipe_key(recipe: dict[str, Any] | None) -> str:
    return json.dumps(recipe, sort_keys=True)


def _submit(parent: Job, proposals: list[Proposal], round_no: int, limit_s: int) -> list[str]:
    """A child job per proposal; one an earlier attempt of this goal job already made (the
    worker was lost mid-search and the job re-queued) is reused, not run again."""

    def call(session: Session) -> list[str]:
        earlier = {
            _recipe_key(child.recipe): child.id
            for child in jobs_repository.children(session, parent.id)
            if child.status != JobStatus.CANCELLED
        }
        ids = []
        for n, proposal in enumerate(proposals, start=1):
            recipe = proposal.recipe.model_dump(mode="json")
            if _recipe_key(recipe) in earlier:
                ids.append(earlier[_recipe_key(recipe)])
                continue
            child = Job(
                tenant=parent.tenant,
                labels=dict(parent.labels),
                model_id=parent.model_id,
                parent_id=parent.id,
                queue=parent.queue,
                priority=parent.priority,
                time_limit_s=limit_s,
                recipe=recipe,
                target=dict(parent.target),
                data=dict(parent.data),
            )
            note = f" (goal job {parent.id}, round {round_no}, candidate {n}: {proposal.purpose})"
            lifecycle.submit(session, job=child, note=note)
            jobs_repository.add_inputs(session, child.id, datasets=dict(parent.data), students=[])
            ids.append(child.id)
        return ids

    return in_transaction(f"submitting candidates of job {parent.id}", call, tenant=parent.tenant)


def _statuses(ids: list[str], *, tenant: str | None) -> dict[str, JobStatus]:
    return reading(
        "reading candidates",
        lambda session: jobs_repository.statuses(session, ids),
        tenant=tenant,
    )


def _work_on(ids: list[str], node: str, keep_going: Any, *, tenant: str | None) -> None:
    """Run queued candidates here, wait for the others; return when all have finished."""
    while True:
        keep_going()
        statuses = _statuses(ids, tenant=tenant)
        if all(JobStatus(s).terminal for s in statuses.values()):
            return
        queued = [i for i in ids if statuses.get(i) == JobStatus.QUEUED]
        if queued:
            execute_job(queued[0], node=node)  # returns at once if another worker claimed it
        else:
            time.sleep(POLL_S)


def _results(
    ids: list[str], proposals: list[Proposal], round_no: int, goal: Goal, *, tenant: str | None
) -> list[CandidateResult]:
    def read(session: Session) -> list[Job]:
        rows = [jobs_repository.get(session, i) for i in ids]
        session.expunge_all()
        return [r for r in rows if r is not None]

    rows = {row.id: row for row in reading("reading candidate reports", read, tenant=tenant)}
    results = []
    for child_id, proposal in zip(ids, proposals, strict=True):
        row = rows.get(child_id)
        status = str(row.status) if row is not None else "cancelled"
        result: dict[str, Any] = {
            "job_id": child_id,
            "round": round_no,
            "purpose": proposal.purpose,
            "recipe": proposal.recipe.model_dump(mode="json"),
            "status": status if status in ("succeeded", "failed") else "cancelled",
            "error": row.error if row is not None else "deleted",
            "worker": owner_node(row.worker) if row is not None and row.worker else None,
        }
        if row is not None and row.status == JobStatus.SUCCEEDED and row.report:
            result.update(figures(goal, row.report))
        results.append(CandidateResult.model_validate(result))
    return results


def _original(report: dict[str, Any]) -> OriginalFigures:
    original, fidelity = report["original"], report.get("fidelity") or {}
    return OriginalFigures(
        bytes=int(original["model_bytes"]),
        latency_p50_ms=float(original["latency_p50_ms"]),
        accuracy=fidelity.get("accuracy_original"),
    )


def run_search(run: JobRun, inputs: RunInputs, original: MeasuredOriginal | None = None) -> None:
    """The goal job's body, in its job process; ``original``: how the original was measured
    before the fan-out (its figures stored for the children), to re-time contenders alike."""
    job, model = inputs.job, inputs.model
    # The candidates this process runs fork from a server of its own, forked from this process
    # as it started (workers/job_process_forks.py); started cold, it starts one now.
    spare.prepare_next()
    goal = Goal.model_validate(job.goal)
    target = Target.model_validate(job.target)
    ctx = SearchContext.of_job(model.format, target, job.data, model.inspection)
    node = owner_node(run.owner)
    started = time.monotonic()
    deadline = started + goal.time_budget_s
    child_limit = max(60, goal.time_budget_s)
    results: list[CandidateResult] = []
    outcomes: list[Outcome] = []
    proposals = first_round(goal, ctx)
    stopped_by = "no candidates left"
    round_no = 0
    last_beat = [0.0]

    def keep_going() -> None:
        if time.monotonic() - last_beat[0] >= 2.0:  # also notices a cancel of this job
            elapsed = time.monotonic() - started
            run.progress(
                f"search round {round_no}", min(0.9, 0.05 + 0.85 * elapsed / goal.time_budget_s)
            )
            last_beat[0] = time.monotonic()

    while True:
        proposals = applicable(proposals, model.format, target, model.inspection)
        if not proposals:
            stopped_by = "converged" if round_no else "no candidates left"
            break
        if round_no >= MAX_ROUNDS:
            stopped_by = "round limit"
            break
        if time.monotonic() > deadline:
            stopped_by = "time budget"
            break
        round_no += 1
        log.info("job %s: search round %d, %d candidate(s)", job.id, round_no, len(proposals))
        ids = _submit(job, proposals, round_no, child_limit)
        _work_on(ids, node, keep_going, tenant=job.tenant)
        round_results = _results(ids, proposals, round_no, goal, tenant=job.tenant)
        results += round_results
        outcomes += [
            Outcome(p, r.meets_budget) for p, r in zip(proposals, round_results, strict=True)
        ]
        proposals = next_round(goal, ctx, outcomes)

    results = mark_front(results)
    retimed = None
    if goal.objective == "latency" and original is not None:
        results, retimed = _retime_contenders(run, results, original, tenant=job.tenant)
    chosen, why = choose(goal, results)
    if chosen is None:
        raise NoCandidateMetBudget(f"the search found no candidate within the budget: {why}")
    row = _child(chosen.job_id, tenant=job.tenant)
    search = SearchReport(
        goal=goal,
        budget=budget_words(goal),
        method=METHOD,
        rounds=round_no,
        candidates=results,
        chosen_job_id=chosen.job_id,
        why=why,
        original=_original(row.report or {}),
        workers=sorted({r.worker for r in results if r.worker}),
        wall_s=round(time.monotonic() - started, 1),
        stopped_by=stopped_by,  # type: ignore[arg-type]
        retimed=retimed,
    )
    report = {**(row.report or {}), "search": search.model_dump(mode="json")}
    assert row.recipe is not None
    publish_copy(run, job, row, report=report, recipe=row.recipe)


def _child(job_id: str, *, tenant: str | None) -> Job:
    def read(session: Session) -> Job:
        row = jobs_repository.get(session, job_id)
        assert row is not None
        session.expunge(row)
        return row

    return reading(f"reading candidate {job_id}", read, tenant=tenant)


def _retime_contenders(
    run: JobRun, results: list[CandidateResult], original: MeasuredOriginal, *, tenant: str | None
) -> tuple[list[CandidateResult], str | None]:
    """The candidates whose latencies decide the choice, timed again here, in alternating
    rounds, now that no candidate of this search runs beside them (issue 24)."""
    ids = contenders(results)
    if len(ids) < 2:
        return results, None  # nothing to decide between
    run.progress(RETIMING, 0.92)
    models: dict[str, Path] = {}
    for job_id in ids:
        row = _child(job_id, tenant=tenant)
        assert row.artifact_key is not None
        folder = fetch_model(row.artifact_key, run.workdir / "retime" / job_id)
        timed = folder / "model.onnx" if original.runtime == "onnxruntime" else folder
        if not timed.exists():
            log.warning("job %s: candidate %s has no %s to re-time", run.job_id, job_id, timed)
            return results, None
        models[job_id] = timed
    settings = measure_settings()
    p50 = retime(
        models,
        runtime=original.runtime,
        inputs=original.inputs,
        batch_size=original.batch_size,
        settings=settings,
        device=original.device,
    )
    shutil.rmtree(run.workdir / "retime", ignore_errors=True)
    retimed = [
        c.model_copy(update={"retimed_p50_ms": round(p50[c.job_id], 4)}) if c.job_id in p50 else c
        for c in results
    ]
    how = (
        f"the {len(ids)} fastest candidates meeting the budget (at most {RETIME_MAX}) timed "
        "again after the search by the goal job's process: "
        f"{ROUNDS} rounds, each timing every one in a fresh process in turn, {settings.iterations} "
        f"iterations after {settings.warmup} warm-up, {settings.threads} thread(s); the lowest "
        "p50 of each decides"
    )
    return retimed, how
