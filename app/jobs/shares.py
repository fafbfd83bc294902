"""Fair sharing between tenants: each tenant may have ``share`` jobs sent or running at once.

A tenant's share is the operator's (``PUT /v1/tenants/{tenant}/share``) or, without one, the
default ``MODELPRESS_TENANT_RUNNING_JOBS_DEFAULT``; none means no limit, and jobs without a
tenant (authentication off) are never held. A job submitted past its tenant's share is held in
the database (``waiting_reason``) instead of filling the broker; app/jobs/lifecycle.py sends
held jobs when a job of theirs ends, and the workers' sweep catches the rest (a raised share).
Idle capacity needs no rule: the broker's workers take whatever was sent, from any tenant.

A goal search's candidates are jobs of its tenant like any other: held past the share, counted
while sent or running. The goal job's own process may run its held candidates itself (it only
waits meanwhile), so a goal job never waits on its own candidates. Both count as its tenant's
running work, so the tenant's other jobs wait; the one candidate the goal's process runs may take
the tenant one past its share (the goal process itself only waits while it runs).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.auth.tenancy import session_tenant
from app.db.models import Job
from app.jobs import repository
from app.settings import get_settings


def tenant_of(session: Session, job: Job) -> str | None:
    """A new job's tenant: a request's rows are stamped with the caller's only at flush."""
    return job.tenant or session_tenant(session)


def share_of(session: Session, tenant: str | None) -> int | None:
    """The tenant's running-job share; None: no limit."""
    if tenant is None:
        return None
    row = repository.share(session, tenant)
    if row is not None:
        return row.running_jobs
    return get_settings().auth.tenant_running_jobs_default


def is_default(session: Session, tenant: str) -> bool:
    return repository.share(session, tenant) is None


def room(session: Session, tenant: str | None) -> int | None:
    """How many more of the tenant's jobs may be sent now; None: no limit. Call it holding the
    tenant's lock (``repository.lock_tenant``), or another worker may count the same slot."""
    share = share_of(session, tenant)
    if share is None or tenant is None:
        return None
    return max(0, share - repository.holding_share(session, tenant))


def held_reason(session: Session, tenant: str) -> str:
    share = share_of(session, tenant)
    return (
        f"held: this tenant's share of {share} running jobs is taken; "
        "it is sent when one of its jobs ends"
    )


def set_share(session: Session, tenant: str, running_jobs: int | None) -> None:
    """The operator's share for ``tenant`` (None: no limit). Held jobs it makes room for are
    sent by the workers' next sweep."""
    repository.put_share(session, tenant, running_jobs)
