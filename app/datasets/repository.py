from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Dataset, Job, JobInput, JobStatus, is_valid_id
from app.labels import LabelFilters, matching

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def get(session: Session, dataset_id: str) -> Dataset | None:
    return session.get(Dataset, dataset_id) if is_valid_id(dataset_id) else None


def add(session: Session, dataset: Dataset) -> Dataset:
    session.add(dataset)
    session.flush()
    return dataset


def list_page(
    session: Session, *, labels: LabelFilters, limit: int, offset: int
) -> tuple[Sequence[Dataset], int]:
    where = matching(Dataset.labels, labels)
    total = session.scalar(select(func.count()).select_from(Dataset).where(*where)) or 0
    rows = session.scalars(
        select(Dataset)
        .where(*where)
        .order_by(Dataset.created_at.desc(), Dataset.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, total


def used_by_active_job(session: Session, dataset_id: str) -> bool:
    stmt = (
        select(func.count())
        .select_from(JobInput)
        .join(Job, Job.id == JobInput.job_id)
        .where(JobInput.dataset_id == dataset_id, Job.status.in_(ACTIVE))
    )
    return (session.scalar(stmt) or 0) > 0


def delete(session: Session, dataset: Dataset) -> None:
    """Drops the dataset and the history rows of finished jobs that read it. Rows of active
    jobs stay, so their RESTRICT key fails the delete (IntegrityError) if one raced the check."""
    finished = select(Job.id).where(Job.status.not_in(ACTIVE))
    session.execute(
        sql_delete(JobInput)
        .where(JobInput.dataset_id == dataset.id, JobInput.job_id.in_(finished))
        .execution_options(synchronize_session=False)
    )
    session.delete(dataset)
    session.flush()
