from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Job, JobInput, JobStatus, ModelFile, is_valid_id
from app.labels import LabelFilters, matching

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def get(session: Session, model_id: str) -> ModelFile | None:
    return session.get(ModelFile, model_id) if is_valid_id(model_id) else None


def list_page(
    session: Session, *, labels: LabelFilters, limit: int, offset: int
) -> tuple[Sequence[ModelFile], int]:
    where = matching(ModelFile.labels, labels)
    total = session.scalar(select(func.count()).select_from(ModelFile).where(*where)) or 0
    rows = session.scalars(
        select(ModelFile)
        .where(*where)
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
    """A queued or running job compresses the model, or trains it as an uploaded student."""
    own = select(Job.id).where(Job.model_id == model_id, Job.status.in_(ACTIVE))
    as_student = (
        select(JobInput.job_id)
        .join(Job, Job.id == JobInput.job_id)
        .where(JobInput.model_id == model_id, Job.status.in_(ACTIVE))
    )
    return session.scalar(select(own.union(as_student).exists())) or False


def job_artifact_keys(session: Session, model_id: str) -> list[str]:
    stmt = select(Job.artifact_key).where(Job.model_id == model_id, Job.artifact_key.is_not(None))
    return [key for key in session.scalars(stmt).all() if key]


def delete(session: Session, model: ModelFile) -> None:
    """Drops the model, its (finished) jobs, and the history rows of finished jobs that
    trained it as a student. Rows of active jobs stay, so their RESTRICT key fails the delete
    (IntegrityError) if one raced the check."""
    finished = select(Job.id).where(Job.status.not_in(ACTIVE))
    session.execute(
        sql_delete(JobInput)
        .where(JobInput.model_id == model.id, JobInput.job_id.in_(finished))
        .execution_options(synchronize_session=False)
    )
    session.execute(sql_delete(Job).where(Job.model_id == model.id, Job.status.not_in(ACTIVE)))
    session.delete(model)
    session.flush()
