"""Headline figures of job reports as typed rows, and the queries that rank jobs by them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.db.models import Job, JobResult, JobStatus
from app.errors import AppError
from app.labels import LabelFilters
from app.models_upload.service import get_model
from app.results import repository
from app.results.schemas import JobFigures, ModelJobResult, ResultQuery, Sort, SortKey

FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
# The step setting that tells two recipes of one technique apart in a summary.
_SUMMARY_SETTINGS = ("scheme", "sparsity", "amount", "student", "energy", "ratio", "clusters")


class InvalidSort(AppError):
    status, slug, title = 422, "invalid-sort", "Unknown sort key"


def parse_sort(value: str) -> Sort:
    """``key`` ascending or ``-key`` descending, key one of SortKey."""
    descending = value.startswith("-")
    name = value.removeprefix("-")
    try:
        key = SortKey(name)
    except ValueError:
        allowed = [k.value for k in SortKey]
        raise InvalidSort(
            f"cannot sort by {name!r}; sort by one of {', '.join(allowed)} "
            "(prefix '-' for descending)",
            allowed=allowed,
        ) from None
    return Sort(key=key, descending=descending)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _bytes(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def headline_figures(report: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of a JobResult from a report; a figure the report lacks stays None."""
    original = report.get("original") or {}
    compressed = report.get("compressed") or {}
    fidelity = report.get("fidelity") or {}
    target = report.get("target") or {}
    top1 = _number(fidelity.get("top1_agreement"))
    if _number(fidelity.get("cosine_mean")) is not None:
        metric, low, mean = "cosine", fidelity.get("cosine_min"), fidelity.get("cosine_mean")
    elif top1 is not None:
        metric, low, mean = "top1_agreement", top1, top1  # one agreement rate, no per-row min
    else:
        metric, low, mean = None, None, None
    before, after = (
        _number(fidelity.get("accuracy_original")),
        _number(fidelity.get("accuracy_compressed")),
    )
    # Reports record what ran (ran_on); older ones only the target, and the engine measures
    # ONNX uploads on onnxruntime whatever the target says.
    ran_on = report.get("ran_on") or {}
    runtime = "onnxruntime" if original.get("format") == "onnx" else target.get("runtime")
    device = ran_on.get("device") or target.get("device")
    provider = ran_on.get("provider") or ran_on.get("runtime") or runtime
    return {
        "original_bytes": _bytes(original.get("model_bytes")),
        "compressed_bytes": _bytes(compressed.get("model_bytes")),
        "original_latency_p50_ms": _number(original.get("latency_p50_ms")),
        "latency_p50_ms": _number(compressed.get("latency_p50_ms")),
        "compression_ratio": _number(report.get("compression_ratio")),
        "speedup": _number(report.get("speedup_p50")),
        "fidelity_metric": metric,
        "fidelity_min": _number(low),
        "fidelity_mean": _number(mean),
        "top1_agreement": top1,
        "accuracy_drop": before - after if before is not None and after is not None else None,
        "device": str(device) if device else None,
        "provider": str(provider) if provider else None,
    }


def record_job_results(session: Session, *, job_id: str, report: Mapping[str, Any]) -> JobResult:
    """Called in the transaction that marks the job succeeded, so figures and status agree."""
    return repository.upsert(session, JobResult(job_id=job_id, **headline_figures(report)))


def recipe_summary(recipe: Mapping[str, Any] | None) -> str:
    if not recipe:
        return "goal (no recipe chosen)"
    parts = []
    for step in recipe.get("steps") or []:
        technique = str(step.get("technique", "?"))
        if technique == "nm_sparsity":
            parts.append(f"{technique}({step.get('n')}:{step.get('m')})")
            continue
        setting = next((k for k in _SUMMARY_SETTINGS if step.get(k) is not None), None)
        parts.append(f"{technique}({setting}={step[setting]})" if setting else technique)
    return " → ".join(parts)


def list_jobs(
    session: Session,
    *,
    statuses: Sequence[JobStatus] | None,
    model_id: str | None,
    labels: LabelFilters,
    query: ResultQuery,
    limit: int,
    offset: int,
    parent_id: str | None = None,
) -> tuple[Sequence[Job], int]:
    rows, total = repository.list_page(
        session,
        statuses=statuses or None,
        model_id=model_id,
        parent_id=parent_id,
        labels=labels,
        query=query,
        limit=limit,
        offset=offset,
    )
    return [job for job, _ in rows], total


def model_results(
    session: Session, *, model_id: str, query: ResultQuery, limit: int, offset: int
) -> tuple[list[ModelJobResult], int]:
    """Every finished job on the model with its figures, ranked by ``query``."""
    get_model(session, model_id=model_id)
    rows, total = repository.list_page(
        session, statuses=FINISHED, model_id=model_id, query=query, limit=limit, offset=offset
    )
    items = [
        ModelJobResult(
            job_id=job.id,
            status=job.status,
            recipe_summary=recipe_summary(job.recipe),
            created_at=job.created_at,
            finished_at=job.finished_at,
            figures=JobFigures.model_validate(result) if result is not None else None,
        )
        for job, result in rows
    ]
    return items, total
