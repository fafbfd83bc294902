from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Job, JobInput, JobStatus, ModelFile
from app.db.repository_base import RepositoryBase
from app.labels import LabelFilters, matching

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
_models = RepositoryBase(ModelFile)
get = _models.get
add = _models.add


def list_page(
    session: Session, *, labels: LabelFilters, limit: int, offset: int
) -> tuple[Sequence[ModelFile], int]:
    return _models.page(session, *matching(ModelFile.labels, labels), limit=limit, offset=offset)


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


def same_bytes_elsewhere(session: Session, model: ModelFile) -> bool:
    """Another of the tenant's models holds an upload with the same bytes."""
    others = select(ModelFile.id).where(
        ModelFile.tenant.is_(None) if model.tenant is None else ModelFile.tenant == model.tenant,
        ModelFile.sha256 == model.sha256,
        ModelFile.id != model.id,
    )
    return session.scalar(select(others.exists())) or False


def held_digests(session: Session) -> set[str]:
    """The sha256 of every stored upload, all tenants' (the session must not be scoped)."""
    return set(session.scalars(select(ModelFile.sha256).distinct()).all())


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
