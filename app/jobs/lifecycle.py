"""Every change of a job's status, and the event that records it.

queued -> running (claim) -> succeeded | failed | cancelled (settle); running -> queued when
its worker is lost or its lease runs out (reap); queued -> cancelled, or running flagged, on
request (cancel). A flagged job is never run again: whoever takes it over settles it cancelled.
Each change is a conditional update (``repository.transition``) from the states it expects,
and from the owning worker once running, so duplicate deliveries and stale workers do no harm.
Callers own the transaction: a worker opens a session and makes one call here.

A queued job is sent (its id is on the broker) or held in the database while its tenant's
running-job share is taken (``waiting_reason``, app/jobs/shares.py); held -> sent when a job of
that tenant ends (``_release_share`` in settle and cancel) or on the workers' sweep.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.db.models import EventLevel, Job, JobPhase, JobStatus, ModelFile, utcnow
from app.db.session import on_commit
from app.jobs import repository, shares
from app.jobs.errors import AttemptsExhausted, JobError, WorkerLost
from app.jobs.phases import PhaseTime, phase_times
from app.jobs.recipes import uploaded_students
from app.models_upload import repository as models_repository
from app.pools import repository as pools_repository
from app.queue import enqueue_job
from app.results.service import record_job_results
from app.settings import get_settings
from app.webhooks import service as webhooks


def owner_node(owner: str | None) -> str:
    """A job's owner is ``node|pid``: the Celery worker and its supervising process."""
    return (owner or "").split("|", 1)[0]


def _attempts_exhausted(job: Job) -> bool:
    return job.attempts >= get_settings().worker.max_attempts


def _lease_from_now() -> datetime:
    return utcnow() + timedelta(seconds=get_settings().worker.job_lease_s)


def _lease_expired(job: Job) -> bool:
    """Jobs claimed before leases existed have none; their worker's heartbeat decides."""
    return job.lease_expires_at is not None and job.lease_expires_at < utcnow()


def _enqueue_after_commit(session: Session, job: Job) -> None:
    job_id, queue, priority = job.id, job.queue, job.priority
    on_commit(session, lambda: enqueue_job(job_id, queue=queue, priority=priority))


def submit(session: Session, *, job: Job, note: str = "") -> Job:
    """Record a new queued job; its id goes to the broker once the transaction commits, unless
    its tenant's share is taken: then it is held here until ``dispatch_held`` sends it."""
    job.status = JobStatus.QUEUED
    job.phase = JobPhase.QUEUED
    tenant = shares.tenant_of(session, job)
    if tenant is not None and shares.share_of(session, tenant) is not None:
        repository.lock_tenant(session, tenant, wait=True)
        if shares.room(session, tenant) == 0:
            job.waiting_reason = shares.held_reason(session, tenant)
    repository.add(session, job)
    repository.add_event(session, job.id, f"queued on the {str(job.queue)!r} pool{note}")
    if job.waiting_reason is None:
        _enqueue_after_commit(session, job)
    else:
        repository.add_event(session, job.id, job.waiting_reason)
    return job


def dispatch_held(session: Session, *, tenant: str, wait: bool = True) -> list[str]:
    """Send the tenant's held jobs its share has room for: highest priority first, then oldest.
    Under the tenant's lock (PostgreSQL), so two workers never count the same free slot; each
    send is a conditional update from held, so no job is sent twice (SQLite, stale reads).
    ``wait=False`` (the sweep) skips a tenant another transaction is already dispatching."""
    limited = shares.share_of(session, tenant) is not None  # no limit: nothing to count
    if limited and not repository.lock_tenant(session, tenant, wait=wait):
        return []
    room = shares.room(session, tenant)
    if room == 0:
        return []
    sent = []
    for job in repository.held(session, tenant, limit=room):
        if repository.release_held(session, job.id):
            repository.add_event(session, job.id, "sent to the pool: its tenant's share has room")
            _enqueue_after_commit(session, job)
            sent.append(job.id)
    return sent


def dispatch_all_held(session: Session) -> list[str]:
    """Every tenant's held jobs its share has room for (a raised share, a missed release)."""
    sent: list[str] = []
    for tenant in repository.tenants_holding_jobs(session):
        sent += dispatch_held(session, tenant=tenant, wait=False)
    return sent


def _release_share(session: Session, job_id: str) -> None:
    """A job of a tenant ended or left the queue: its slot goes to the tenant's held jobs."""
    job = repository.get(session, job_id)
    if job is not None and job.tenant is not None:
        dispatch_held(session, tenant=job.tenant)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _may_reclaim(session: Session, job: Job, node: str) -> bool:
    """A message for a job already running is a duplicate unless its runner is gone, or has
    stopped renewing its lease. Claims run on a worker: a runner here is checked by its pid."""
    if _lease_expired(job):
        return True
    their_node, _, pid = (job.worker or "").partition("|")
    if their_node == node:
        return not (pid.isdigit() and _pid_alive(int(pid)))
    stale = get_settings().worker.stale_after_s
    return not pools_repository.is_live(session, their_node, stale_after_s=stale)


@dataclass(frozen=True)
class Claim:
    """An attempt at a job: which one, and how long it may run."""

    attempt: int
    time_limit_s: int
    goal: bool = False  # a goal job: its process will run candidates (workers/spare.py)


def claim(session: Session, *, job_id: str, owner: str) -> Claim | None:
    """queued -> running under ``owner``, holding a lease; None if the job is not ours to run."""
    job = repository.get(session, job_id)
    if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        return None
    previous = job.worker if job.status == JobStatus.RUNNING else None
    if job.status == JobStatus.RUNNING and not _may_reclaim(session, job, owner_node(owner)):
        return None
    if job.cancel_requested:
        _settle_cancelled(session, job_id, owner=previous, from_=job.status)
        return None
    if _attempts_exhausted(job):
        _fail(
            session,
            job_id,
            owner=previous,
            error=AttemptsExhausted(job.attempts),
            from_=job.status,
        )
        return None
    claimed = repository.transition(
        session,
        job_id,
        from_=[job.status],
        owner=previous,
        status=JobStatus.RUNNING,
        worker=owner,
        phase=JobPhase.STARTING,
        progress=0.0,
        started_at=utcnow(),
        attempts=job.attempts + 1,
        lease_expires_at=_lease_from_now(),
        waiting_reason=None,  # a held candidate its goal job's process runs itself
    )
    if not claimed:
        return None
    repository.add_event(
        session, job_id, f"attempt {job.attempts + 1} started on {owner_node(owner)}"
    )
    time_limit = job.time_limit_s or get_settings().worker.job_soft_time_limit_s
    return Claim(attempt=job.attempts + 1, time_limit_s=time_limit, goal=job.goal is not None)


@dataclass
class RunInputs:
    """What the job process needs, read once it holds the job."""

    job: Job
    model: ModelFile
    students: list[ModelFile]


def start_run(session: Session, *, job_id: str, owner: str) -> RunInputs | None:
    """The job and its models, or None when ``owner`` no longer runs it (cancelled, reaped)."""
    job = repository.get(session, job_id)
    if job is None or job.worker != owner or job.status != JobStatus.RUNNING:
        return None
    model = models_repository.get(session, job.model_id)
    if model is None:
        raise JobError("the model of this job was deleted")
    students = []
    for student_id in uploaded_students(job.recipe):
        student = models_repository.get(session, student_id)
        if student is None:
            raise JobError(f"the student model {student_id} was deleted")
        students.append(student)
    session.expunge_all()
    return RunInputs(job=job, model=model, students=students)


def progress(session: Session, *, job_id: str, owner: str, phase: str, fraction: float) -> bool:
    """Record progress; False tells the runner to stop (cancel requested, or no longer ours)."""
    job = repository.get(session, job_id)
    if job is None:
        return False
    previous_phase = job.phase
    moved = repository.transition(
        session,
        job_id,
        from_=[JobStatus.RUNNING],
        owner=owner,
        phase=phase[:128],
        progress=round(min(max(fraction, 0.0), 1.0), 4),
    )
    if not moved:
        return False
    session.refresh(job)
    if job.cancel_requested:
        return False
    if phase[:128] != previous_phase:
        repository.add_event(session, job_id, phase)
    return True


def renew_lease(session: Session, *, job_id: str, owner: str) -> bool:
    """Extend ``owner``'s lease; False tells it to stop (cancel requested, or taken over)."""
    renewed = repository.transition(
        session, job_id, from_=[JobStatus.RUNNING], owner=owner, lease_expires_at=_lease_from_now()
    )
    job = repository.get(session, job_id)
    return renewed and job is not None and not job.cancel_requested


def _settle(
    session: Session,
    job_id: str,
    *,
    owner: str | None,
    message: str,
    level: EventLevel,
    from_: JobStatus = JobStatus.RUNNING,
    **values: Any,
) -> bool:
    """running -> a final status, with its event; False when ``owner`` no longer holds it."""
    done = repository.transition(
        session, job_id, from_=[from_], owner=owner, finished_at=utcnow(), **values
    )
    if done:
        repository.add_event(session, job_id, message, level)
        _keep_phases(session, job_id)
        webhooks.emit_job_ended(session, job_id, values["status"])
        _release_share(session, job_id)
    return done


def phases_of(session: Session, job: Job) -> list[PhaseTime]:
    """Where the job's time went so far: kept once it finished, else read from its log."""
    if job.finished_at is not None:
        kept = repository.kept_phases(session, job.id)
        if kept:
            return kept
    return phase_times(
        job.created_at,
        repository.events(session, job.id),
        finished=job.finished_at is not None,
        now=utcnow(),
    )


def _keep_phases(session: Session, job_id: str) -> None:
    """Called as the job's final event is added: that event is its end."""
    job = repository.get(session, job_id)
    if job is not None:
        events = repository.events(session, job_id)
        times = phase_times(job.created_at, events, finished=True, now=utcnow())
        repository.keep_phases(session, job_id, times)


def succeed(
    session: Session,
    *,
    job_id: str,
    owner: str,
    report: dict[str, Any],
    artifact_key: str,
    artifact_bytes: int,
    artifact_sha256: str,
    artifact_format: str,
    recipe: dict[str, Any] | None = None,
) -> bool:
    """running -> succeeded with its report and artifact (and, for a goal job, the recipe its
    search chose). The one place a job succeeds:
    whatever else a finished job records belongs here, in the same transaction."""
    done = _settle(
        session,
        job_id,
        owner=owner,
        message=f"job {JobStatus.SUCCEEDED}",
        level=EventLevel.INFO,
        status=JobStatus.SUCCEEDED,
        phase=JobPhase.DONE,
        progress=1.0,
        report=report,
        artifact_key=artifact_key,
        artifact_bytes=artifact_bytes,
        artifact_sha256=artifact_sha256,
        artifact_format=artifact_format,
        **({"recipe": recipe} if recipe is not None else {}),  # type: ignore[arg-type]
    )
    if done:
        record_job_results(session, job_id=job_id, report=report)
        return True
    # A retry after a commit whose reply the connection lost finds its own success.
    job = repository.get(session, job_id)
    return (
        job is not None and job.status == JobStatus.SUCCEEDED and job.artifact_key == artifact_key
    )


def fail(session: Session, *, job_id: str, owner: str, error: JobError) -> bool:
    """running -> failed, with the user's message."""
    return _fail(session, job_id, owner=owner, error=error)


def _fail(
    session: Session,
    job_id: str,
    *,
    owner: str | None,
    error: JobError,
    from_: JobStatus = JobStatus.RUNNING,
) -> bool:
    return _settle(
        session,
        job_id,
        owner=owner,
        from_=from_,
        message=str(error),
        level=EventLevel.ERROR,
        status=JobStatus.FAILED,
        phase=JobPhase.FAILED,
        error=str(error),
    )


def settle_cancelled(session: Session, *, job_id: str, owner: str) -> bool:
    """running -> cancelled, once the runner has stopped."""
    return _settle_cancelled(session, job_id, owner=owner)


def _settle_cancelled(
    session: Session, job_id: str, *, owner: str | None, from_: JobStatus = JobStatus.RUNNING
) -> bool:
    return _settle(
        session,
        job_id,
        owner=owner,
        from_=from_,
        message=f"job {JobStatus.CANCELLED}",
        level=EventLevel.WARNING,
        status=JobStatus.CANCELLED,
        phase=JobPhase.CANCELLED,
    )


def cancel(session: Session, *, job_id: str) -> bool:
    """A queued job is cancelled at once; a running one is flagged and its worker stops it.
    A goal job's unfinished candidates go with it. False when the job had already finished."""
    done = _cancel_one(session, job_id)
    if done:
        for child in repository.unfinished_children(session, job_id):
            cancel(session, job_id=child.id)
    return done


def _cancel_one(session: Session, job_id: str) -> bool:
    job = repository.get(session, job_id)
    was_sent = job is not None and job.waiting_reason is None
    cancelled = repository.transition(
        session,
        job_id,
        from_=[JobStatus.QUEUED],
        status=JobStatus.CANCELLED,
        phase=JobPhase.CANCELLED,
        finished_at=utcnow(),
        cancel_requested=True,
    )
    if cancelled:
        repository.add_event(session, job_id, "cancelled while queued", EventLevel.WARNING)
        _keep_phases(session, job_id)
        webhooks.emit_job_ended(session, job_id, JobStatus.CANCELLED)
        if was_sent:  # a held job took no slot (and waiting here on the lock could deadlock)
            _release_share(session, job_id)
        return True
    flagged = repository.transition(
        session,
        job_id,
        from_=[JobStatus.RUNNING],
        cancel_requested=True,
        phase=JobPhase.CANCELLING,
    )
    if flagged:
        repository.add_event(session, job_id, "cancel requested", EventLevel.WARNING)
    return flagged


def reap_stale(session: Session) -> list[str]:
    """Running jobs whose worker stopped beating, or whose lease ran out, are taken over:
    settled cancelled if a cancel was asked, failed after max attempts, else re-queued.
    Returns the re-queued ids; they go to the broker once the transaction commits."""
    stale = get_settings().worker.stale_after_s
    requeued: list[str] = []
    for job in repository.running(session):
        node = owner_node(job.worker)
        if not _lease_expired(job) and pools_repository.is_live(session, node, stale_after_s=stale):
            continue
        if job.cancel_requested:
            _settle_cancelled(session, job.id, owner=job.worker)
        elif _attempts_exhausted(job):
            _fail(session, job.id, owner=job.worker, error=WorkerLost(job.attempts))
        elif repository.transition(
            session,
            job.id,
            from_=[JobStatus.RUNNING],
            owner=job.worker,
            status=JobStatus.QUEUED,
            phase=JobPhase.REQUEUED,
            progress=0.0,
        ):
            lost = "stopped renewing its lease" if _lease_expired(job) else "lost"
            repository.add_event(
                session, job.id, f"worker {node} {lost}; re-queued", EventLevel.WARNING
            )
            _enqueue_after_commit(session, job)
            requeued.append(job.id)
    return requeued


def resend_stale_queued(session: Session) -> list[str]:
    """Re-send jobs queued for a while: the broker may have lost their message (restart).
    Touching the row first means one worker re-sends it, not every worker at once."""
    cutoff = utcnow() - timedelta(seconds=get_settings().worker.reconcile_after_s)
    resend: list[str] = []
    for job in repository.queued_before(session, cutoff):
        if repository.transition(session, job.id, from_=[JobStatus.QUEUED], updated_at=utcnow()):
            _enqueue_after_commit(session, job)
            resend.append(job.id)
    return resend
