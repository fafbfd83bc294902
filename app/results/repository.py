from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.db.models import Job, JobResult, JobStatus, is_valid_id
from app.labels import LabelFilters, matching
from app.results.schemas import FigureFilters, ResultQuery, SortKey

_SORT_COLUMNS: dict[SortKey, InstrumentedAttribute[Any]] = {
    SortKey.CREATED_AT: Job.created_at,
    SortKey.SPEEDUP: JobResult.speedup,
    SortKey.COMPRESSION_RATIO: JobResult.compression_ratio,
    SortKey.LATENCY_P50_MS: JobResult.latency_p50_ms,
    SortKey.FIDELITY_MIN: JobResult.fidelity_min,
    SortKey.ACCURACY_DROP: JobResult.accuracy_drop,
    SortKey.COMPRESSED_BYTES: JobResult.compressed_bytes,
}


def upsert(session: Session, result: JobResult) -> JobResult:
    merged = session.merge(result)
    session.flush()
    return merged


def get(session: Session, job_id: str) -> JobResult | None:
    return session.get(JobResult, job_id) if is_valid_id(job_id) else None


def _bounds(filters: FigureFilters) -> list[ColumnElement[bool]]:
    lower = {
        JobResult.speedup: filters.min_speedup,
        JobResult.compression_ratio: filters.min_compression_ratio,
        JobResult.fidelity_min: filters.min_fidelity_min,
    }
    upper = {
        JobResult.accuracy_drop: filters.max_accuracy_drop,
        JobResult.latency_p50_ms: filters.max_latency_p50_ms,
        JobResult.compressed_bytes: filters.max_compressed_bytes,
    }
    return [col >= v for col, v in lower.items() if v is not None] + [
        col <= v for col, v in upper.items() if v is not None
    ]


def _ordered(query: Select[Job, JobResult], result_query: ResultQuery) -> Select[Job, JobResult]:
    sort = result_query.sort
    column = _SORT_COLUMNS[sort.key]
    # Jobs without figures go last either way (PostgreSQL would put NULLs first on DESC).
    primary = (column.desc() if sort.descending else column.asc()).nulls_last()
    return query.order_by(primary, Job.created_at.desc(), Job.id)


def list_page(
    session: Session,
    *,
    statuses: Sequence[JobStatus] | None,
    model_id: str | None,
    query: ResultQuery,
    limit: int,
    offset: int,
    labels: LabelFilters = (),
    parent_id: str | None = None,
) -> tuple[Sequence[tuple[Job, JobResult | None]], int]:
    """Jobs with their figures (None before success), filtered and ranked in SQL."""
    stmt = select(Job, JobResult).outerjoin(JobResult, JobResult.job_id == Job.id)
    if statuses is not None:
        stmt = stmt.where(Job.status.in_(list(statuses)))
    if model_id is not None:
        if not is_valid_id(model_id):
            return [], 0
        stmt = stmt.where(Job.model_id == model_id)
    if parent_id is not None:
        if not is_valid_id(parent_id):
            return [], 0
        stmt = stmt.where(Job.parent_id == parent_id)
    bounds = [*_bounds(query.filters), *matching(Job.labels, labels)]
    if bounds:
        stmt = stmt.where(*bounds)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(_ordered(stmt, query).limit(limit).offset(offset)).tuples().all()
    return [(job, result) for job, result in rows], total
