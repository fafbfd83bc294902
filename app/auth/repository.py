"""Every query of app/auth/: API keys, and what a tenant's quotas count."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db.models import ApiKey, Dataset, Job, JobStatus, ModelFile, utcnow
from app.db.repository_base import RepositoryBase

_keys = RepositoryBase(ApiKey)
add_key = _keys.add


def key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))


def keys(session: Session) -> Sequence[ApiKey]:
    return session.scalars(select(ApiKey).order_by(ApiKey.tenant, ApiKey.created_at)).all()


def revoke_key(session: Session, key_id: str) -> bool:
    """Whether this call revoked it (False: no such key, or already revoked)."""
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def active_key_ids(session: Session, key_ids: Iterable[str]) -> frozenset[str]:
    """Those of ``key_ids`` still active: not revoked, not deleted."""
    return frozenset(
        session.scalars(
            select(ApiKey.id).where(ApiKey.id.in_(list(key_ids)), ApiKey.revoked_at.is_(None))
        ).all()
    )


def stored_bytes(session: Session) -> int:
    """Bytes of uploads (models and datasets) the session's scope can see."""
    return sum(
        session.scalar(select(func.coalesce(func.sum(row.size_bytes), 0))) or 0
        for row in (ModelFile, Dataset)
    )


def active_jobs(session: Session) -> int:
    """Jobs queued or running that the session's scope can see."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)))
        )
        or 0
    )
