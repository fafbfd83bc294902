from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from app.db.models import (
    EventLevel,
    Job,
    JobEvent,
    JobInput,
    JobPhaseTime,
    JobStatus,
    TenantShare,
    utcnow,
)
from app.db.repository_base import RepositoryBase
from app.jobs.phases import PhaseTime, metric_label

_jobs = RepositoryBase(Job)
get = _jobs.get
add = _jobs.add


def transition(
    session: Session,
    job_id: str,
    *,
    from_: Sequence[JobStatus],
    owner: str | None = None,
    **values: Any,
) -> bool:
    """Conditional update: succeeds only from the expected states (and owner, when given),
    so duplicate deliveries and stale workers do no harm. Only app/jobs/lifecycle.py calls it."""
    condition = [Job.id == job_id, Job.status.in_(list(from_))]
    if owner is not None:
        condition.append(Job.worker == owner)
    result = session.execute(
        update(Job).where(*condition).values(**values).execution_options(synchronize_session=False)
    )
    return (result.rowcount or 0) == 1  # type: ignore[attr-defined]


def running(session: Session) -> Sequence[Job]:
    return session.scalars(select(Job).where(Job.status == JobStatus.RUNNING)).all()


def children(session: Session, parent_id: str) -> Sequence[Job]:
    """A goal job's candidates, oldest first."""
    return session.scalars(
        select(Job).where(Job.parent_id == parent_id).order_by(Job.created_at)
    ).all()


def unfinished_children(session: Session, parent_id: str) -> Sequence[Job]:
    """A goal job's candidates still queued or running."""
    return session.scalars(
        select(Job).where(
            Job.parent_id == parent_id, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])
        )
    ).all()


def queued_before(session: Session, cutoff: datetime) -> Sequence[Job]:
    """Queued jobs untouched since ``cutoff`` that were sent (a held job has no message)."""
    return session.scalars(
        select(Job).where(
            Job.status == JobStatus.QUEUED, Job.waiting_reason.is_(None), Job.updated_at < cutoff
        )
    ).all()


def share(session: Session, tenant: str) -> TenantShare | None:
    return session.get(TenantShare, tenant)


def put_share(session: Session, tenant: str, running_jobs: int | None) -> TenantShare:
    row = session.get(TenantShare, tenant) or TenantShare(tenant=tenant)
    row.running_jobs = running_jobs
    session.add(row)
    session.flush()
    return row


def lock_tenant(session: Session, tenant: str, *, wait: bool) -> bool:
    """Serialize one tenant's share decisions until the transaction ends, so two workers never
    both count the same free slot: a PostgreSQL advisory lock (``wait=False``: False if another
    transaction holds it). SQLite has one writer at a time; it takes no lock here."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    key = func.hashtext(f"modelpress.share:{tenant}")
    if wait:
        session.execute(select(func.pg_advisory_xact_lock(key)))
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(key))))


def holding_share(session: Session, tenant: str) -> int:
    """A tenant's jobs that take a slot of its share: running, or queued and sent."""
    taking = or_(
        Job.status == JobStatus.RUNNING,
        and_(Job.status == JobStatus.QUEUED, Job.waiting_reason.is_(None)),
    )
    count = select(func.count()).select_from(Job).where(Job.tenant == tenant, taking)
    return session.scalar(count) or 0


def held(session: Session, tenant: str, *, limit: int | None) -> Sequence[Job]:
    """A tenant's held jobs in the order they are sent: highest priority, then oldest."""
    query = (
        select(Job)
        .where(
            Job.tenant == tenant, Job.status == JobStatus.QUEUED, Job.waiting_reason.is_not(None)
        )
        .order_by(Job.priority.desc(), Job.created_at, Job.id)
    )
    return session.scalars(query if limit is None else query.limit(limit)).all()


def tenants_holding_jobs(session: Session) -> list[str]:
    """Tenants with at least one held job."""
    query = select(Job.tenant).where(
        Job.status == JobStatus.QUEUED, Job.waiting_reason.is_not(None)
    )
    return [t for t in session.scalars(query.distinct()).all() if t is not None]


def release_held(session: Session, job_id: str) -> bool:
    """Held -> sent, only if still held: of two workers releasing the same job, one wins."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED, Job.waiting_reason.is_not(None))
        .values(waiting_reason=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return (result.rowcount or 0) == 1  # type: ignore[attr-defined]


def add_inputs(
    session: Session, job_id: str, *, datasets: dict[str, str], students: list[str]
) -> None:
    """Record what the job reads, under RESTRICT keys, so none of it can be deleted while the
    job is queued or running (and a delete racing this insert fails, one way or the other)."""
    rows = [JobInput(job_id=job_id, role=role, dataset_id=ds) for role, ds in datasets.items()]
    rows += [
        JobInput(job_id=job_id, role=f"student-{n}", model_id=student_id)
        for n, student_id in enumerate(dict.fromkeys(students), start=1)
    ]
    session.add_all(rows)
    session.flush()


def add_event(
    session: Session, job_id: str, message: str, level: EventLevel = EventLevel.INFO
) -> None:
    session.add(JobEvent(job_id=job_id, message=message[:4000], level=level))
    session.flush()


def events(session: Session, job_id: str, *, after_id: int = 0) -> Sequence[JobEvent]:
    return session.scalars(
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.id > after_id)
        .order_by(JobEvent.id)
    ).all()


def statuses(session: Session, job_ids: Sequence[str]) -> dict[str, JobStatus]:
    """The status of each of these jobs that the session can see."""
    rows = session.execute(select(Job.id, Job.status).where(Job.id.in_(list(job_ids))))
    return {job_id: JobStatus(status) for job_id, status in rows}


def states(
    session: Session, job_ids: Sequence[str]
) -> Sequence[Row[str, JobStatus, str, float, int, str | None]]:
    """What an event stream shows of each job: status, phase, progress, attempts, error."""
    return session.execute(
        select(Job.id, Job.status, Job.phase, Job.progress, Job.attempts, Job.error).where(
            Job.id.in_(list(job_ids))
        )
    ).all()


def events_after(session: Session, cursors: dict[str, int], *, limit: int) -> Sequence[JobEvent]:
    """Each job's events after its cursor, oldest first, at most ``limit`` in all."""
    return session.scalars(
        select(JobEvent)
        .where(or_(*(and_(JobEvent.job_id == j, JobEvent.id > c) for j, c in cursors.items())))
        .order_by(JobEvent.id)
        .limit(limit)
    ).all()


def timings(session: Session, *, statuses: Sequence[JobStatus]) -> Sequence[Row[Any]]:
    """Status, recipe, start and end time of every job in one of ``statuses``."""
    return session.execute(
        select(Job.status, Job.recipe, Job.started_at, Job.finished_at).where(
            Job.status.in_(list(statuses))
        )
    ).all()


def queued_per_pool(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Job.queue, func.count()).where(Job.status == JobStatus.QUEUED).group_by(Job.queue)
    ).all()
    return {queue: count for queue, count in rows}


def keep_phases(session: Session, job_id: str, times: Sequence[PhaseTime]) -> None:
    session.add_all(
        JobPhaseTime(
            job_id=job_id,
            position=n,
            phase=time.phase[:128],
            label=metric_label(time.phase),
            seconds=time.seconds,
        )
        for n, time in enumerate(times)
    )
    session.flush()


def kept_phases(session: Session, job_id: str) -> list[PhaseTime]:
    rows = session.scalars(
        select(JobPhaseTime).where(JobPhaseTime.job_id == job_id).order_by(JobPhaseTime.position)
    )
    return [PhaseTime(row.phase, row.seconds) for row in rows]


def phase_histogram(session: Session, edges: Sequence[float]) -> Sequence[Row[Any]]:
    """Per phase label: the count, the sum of seconds, and how many took at most each edge,
    counted in the database (one row a label, however many jobs have finished)."""
    within = [
        func.sum(case((JobPhaseTime.seconds <= edge, 1), else_=0)).label(f"le_{n}")
        for n, edge in enumerate(edges)
    ]
    return session.execute(
        select(
            JobPhaseTime.label,
            func.count().label("count"),
            func.sum(JobPhaseTime.seconds).label("total"),
            *within,
        )
        .group_by(JobPhaseTime.label)
        .order_by(JobPhaseTime.label)
    ).all()
