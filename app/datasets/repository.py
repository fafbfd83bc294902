from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Dataset, Job, JobInput, JobStatus
from app.db.repository_base import RepositoryBase
from app.labels import LabelFilters, matching

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
_datasets = RepositoryBase(Dataset)
get = _datasets.get
add = _datasets.add


def list_page(
    session: Session, *, labels: LabelFilters, limit: int, offset: int
) -> tuple[Sequence[Dataset], int]:
    return _datasets.page(session, *matching(Dataset.labels, labels), limit=limit, offset=offset)


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
