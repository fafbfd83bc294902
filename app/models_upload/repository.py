from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Result, func, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session

from app.db.models import Job, JobStatus, ModelFile, ModelStatus, is_valid_id, utcnow


def get(session: Session, model_id: str) -> ModelFile | None:
    return session.get(ModelFile, model_id) if is_valid_id(model_id) else None


def list_page(session: Session, *, limit: int, offset: int) -> tuple[Sequence[ModelFile], int]:
    total = session.scalar(select(func.count()).select_from(ModelFile)) or 0
    rows = session.scalars(
        select(ModelFile)
        .order_by(ModelFile.created_at.desc(), ModelFile.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, total


def add(session: Session, model: ModelFile) -> ModelFile:
    session.add(model)
    session.flush()
    return model


def has_active_jobs(session: Session, model_id: str) -> bool:
    active = (JobStatus.QUEUED, JobStatus.RUNNING)
    stmt = (
        select(func.count())
        .select_from(Job)
        .where(Job.model_id == model_id, Job.status.in_(active))
    )
    return (session.scalar(stmt) or 0) > 0


def job_artifact_keys(session: Session, model_id: str) -> list[str]:
    stmt = select(Job.artifact_key).where(Job.model_id == model_id, Job.artifact_key.is_not(None))
    return [key for key in session.scalars(stmt).all() if key]


def delete(session: Session, model: ModelFile) -> None:
    session.execute(sql_delete(Job).where(Job.model_id == model.id))
    session.delete(model)
    session.flush()


def finish_inspection(session: Session, model_id: str, **values: Any) -> bool:
    """Move a pending model to its verdict; False when another worker got there first."""
    stmt = (
        update(ModelFile)
        .where(ModelFile.id == model_id, ModelFile.status == ModelStatus.PENDING)
        .values(**values, updated_at=utcnow())
    )
    return _rowcount(session.execute(stmt)) == 1


def pending_since(session: Session, cutoff: datetime) -> list[str]:
    """Pending models untouched since ``cutoff`` are marked touched now and returned to re-send."""
    ids = session.scalars(
        select(ModelFile.id).where(
            ModelFile.status == ModelStatus.PENDING, ModelFile.updated_at < cutoff
        )
    ).all()
    touched = []
    for model_id in ids:
        stmt = (
            update(ModelFile)
            .where(
                ModelFile.id == model_id,
                ModelFile.status == ModelStatus.PENDING,
                ModelFile.updated_at < cutoff,
            )
            .values(updated_at=utcnow())
        )
        if _rowcount(session.execute(stmt)) == 1:
            touched.append(model_id)
    return touched


def _rowcount(result: Result[Any]) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
