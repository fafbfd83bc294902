"""Housekeeping every worker runs beside its jobs: heartbeat, reaping and re-sending.

Every transition here is conditional, so several workers doing it at once is harmless.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import select

from app.db.models import Job, JobStatus, utcnow
from app.db.session import get_sessionmaker
from app.jobs import repository as jobs_repository
from app.models_upload import repository as models_repository
from app.pools.repository import is_live
from app.queue import enqueue_inspection, enqueue_job
from app.settings import get_settings
from workers import registry

log = logging.getLogger("modelpress.maintenance")


def owner_node(owner: str | None) -> str:
    return (owner or "").split("|", 1)[0]


def reap_stale_jobs() -> list[str]:
    """Running jobs whose worker stopped beating are re-queued, or failed after max attempts."""
    settings = get_settings().worker
    requeued: list[tuple[str, str, int]] = []
    with get_sessionmaker().begin() as session:
        running = session.scalars(select(Job).where(Job.status == JobStatus.RUNNING)).all()
        for job in running:
            node = owner_node(job.worker)
            if is_live(session, node, stale_after_s=settings.stale_after_s):
                continue
            if job.attempts >= settings.max_attempts:
                jobs_repository.transition(
                    session,
                    job.id,
                    from_=[JobStatus.RUNNING],
                    owner=job.worker,
                    status=JobStatus.FAILED,
                    phase="failed",
                    finished_at=utcnow(),
                    error=f"the worker running this job was lost {job.attempts} times; giving up",
                )
                jobs_repository.add_event(
                    session, job.id, "worker lost; attempts exhausted", "error"
                )
            elif jobs_repository.transition(
                session,
                job.id,
                from_=[JobStatus.RUNNING],
                owner=job.worker,
                status=JobStatus.QUEUED,
                phase="re-queued after the worker was lost",
                progress=0.0,
            ):
                jobs_repository.add_event(
                    session, job.id, f"worker {node} lost; re-queued", "warning"
                )
                requeued.append((job.id, job.queue, job.priority))
    for job_id, queue, priority in requeued:
        enqueue_job(job_id, queue=queue, priority=priority)
    return [job_id for job_id, _, _ in requeued]


def reconcile_queued() -> list[str]:
    """Re-send jobs queued for a while: the broker may have lost their message (restart)."""
    settings = get_settings().worker
    cutoff = utcnow() - timedelta(seconds=settings.reconcile_after_s)
    resend: list[tuple[str, str, int]] = []
    with get_sessionmaker().begin() as session:
        stale = session.scalars(
            select(Job).where(Job.status == JobStatus.QUEUED, Job.updated_at < cutoff)
        ).all()
        for job in stale:
            if jobs_repository.transition(
                session, job.id, from_=[JobStatus.QUEUED], updated_at=utcnow()
            ):
                resend.append((job.id, job.queue, job.priority))
    for job_id, queue, priority in resend:
        enqueue_job(job_id, queue=queue, priority=priority)
    return [job_id for job_id, _, _ in resend]


def reconcile_pending_models() -> list[str]:
    """Re-send inspections of models pending for a while, for the same reason as jobs."""
    cutoff = utcnow() - timedelta(seconds=get_settings().worker.reconcile_after_s)
    with get_sessionmaker().begin() as session:
        resend = models_repository.pending_since(session, cutoff)
    for model_id in resend:
        enqueue_inspection(model_id)
    return resend


class Maintenance(threading.Thread):
    def __init__(self, node: str) -> None:
        super().__init__(name="modelpress-maintenance", daemon=True)
        self.node = node
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = get_settings().worker.heartbeat_s
        while not self.stopped.wait(interval):
            for step in (
                lambda: registry.heartbeat(self.node),
                reap_stale_jobs,
                reconcile_queued,
                reconcile_pending_models,
            ):
                try:
                    step()
                except Exception:  # the database may be briefly away; try next tick
                    log.exception("maintenance step failed")

    def stop(self) -> None:
        self.stopped.set()
