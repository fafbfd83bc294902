from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Dataset, Job, JobStatus, is_valid_id


def get(session: Session, dataset_id: str) -> Dataset | None:
    return session.get(Dataset, dataset_id) if is_valid_id(dataset_id) else None


def add(session: Session, dataset: Dataset) -> Dataset:
    session.add(dataset)
    session.flush()
    return dataset


def list_page(session: Session, *, limit: int, offset: int) -> tuple[Sequence[Dataset], int]:
    total = session.scalar(select(func.count()).select_from(Dataset)) or 0
    rows = session.scalars(
        select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id).limit(limit).offset(offset)
    ).all()
    return rows, total


def used_by_active_job(session: Session, dataset_id: str) -> bool:
    active = select(Job.data).where(Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)))
    # JSON columns differ between SQLite and PostgreSQL; the active set is small, so filter here.
    return any(dataset_id in (data or {}).values() for data in session.scalars(active))


def delete(session: Session, dataset: Dataset) -> None:
    session.delete(dataset)
    session.flush()
