"""Housekeeping every worker runs beside its jobs: heartbeat, reaping, re-sending, and sending
jobs held for their tenant's share.

Every transition here is conditional, so several workers doing it at once is harmless.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from datetime import timedelta

from app import inspection_lease
from app.db.models import Dataset, JobStatus, ModelFile, is_valid_id, utcnow
from app.jobs import lifecycle
from app.jobs import repository as jobs_repository
from app.models_upload import repository as models_repository
from app.queue import enqueue_dataset_inspection, enqueue_inspection, enqueue_webhook_delivery
from app.settings import get_settings
from workers import job_run, registry
from workers.model_cache import drop_unlisted, evict
from workers.webhooks import overdue_deliveries

log = logging.getLogger("modelpress.maintenance")


def reap_stale_jobs() -> list[str]:
    """Running jobs whose worker stopped beating, or whose lease ran out, are taken over:
    cancelled if a cancel was asked, else re-queued, or failed after max attempts."""
    with job_run.session() as session, session.begin():
        return lifecycle.reap_stale(session)


def reconcile_queued() -> list[str]:
    """Re-send jobs queued for a while: the broker may have lost their message (restart)."""
    with job_run.session() as session, session.begin():
        return lifecycle.resend_stale_queued(session)


def dispatch_held_jobs() -> list[str]:
    """Send held jobs whose tenant's share has room: a share raised by the operator, or a slot
    freed without a release (a job deleted). Ending jobs release their slot themselves."""
    with job_run.session() as session, session.begin():
        return lifecycle.dispatch_all_held(session)


def reconcile_inspections() -> list[str]:
    """Re-send inspections of uploads pending for a while (the broker may have lost the
    message) or whose lease ran out (the inspecting worker died); never one still inspecting."""
    cutoff = utcnow() - timedelta(seconds=get_settings().worker.reconcile_after_s)
    with job_run.session() as session, session.begin():
        models = inspection_lease.due_for_resend(session, ModelFile, cutoff=cutoff)
        datasets = inspection_lease.due_for_resend(session, Dataset, cutoff=cutoff)
    for model_id in models:
        enqueue_inspection(model_id)
    for dataset_id in datasets:
        enqueue_dataset_inspection(dataset_id)
    return models + datasets


def resend_overdue_webhooks() -> list[str]:
    """Deliveries whose message (first or retry) the broker may have lost: due for longer than
    a queued message takes to be consumed."""
    overdue = overdue_deliveries(after_s=get_settings().worker.reconcile_after_s)
    for delivery_id in overdue:
        enqueue_webhook_delivery(delivery_id)
    return overdue


SCRATCH_GRACE_S = 60.0  # a folder younger than this may belong to a job still being claimed


def sweep_scratch() -> list[str]:
    """Delete job scratch folders (tmp/job-{id}-*) whose job is not running: a worker killed
    mid-job never reached its own cleanup, and no later attempt may run on this machine."""
    tmp = get_settings().tmp_dir
    if not tmp.is_dir():
        return []
    cutoff = time.time() - SCRATCH_GRACE_S
    removed = []
    for folder in tmp.glob("job-*-*"):
        job_id = folder.name[len("job-") : len("job-") + 36]
        if not folder.is_dir() or folder.stat().st_mtime > cutoff or not is_valid_id(job_id):
            continue
        with job_run.session() as session:
            job = jobs_repository.get(session, job_id)
            if job is not None and job.status == JobStatus.RUNNING:
                continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    return removed


def sweep_model_cache() -> list[str]:
    """Drop cached unpacked uploads (workers/model_cache.py) that no model row holds any more:
    a deleted model's files do not outlive it on the workers' disks beyond a tick."""
    settings = get_settings()
    cache = settings.model_cache_dir
    if not cache.is_dir():
        return []
    with job_run.session() as session:
        held = models_repository.held_digests(session)
    removed = drop_unlisted(cache, held)
    return removed + evict(cache, limit=settings.worker.model_cache_bytes)


class Maintenance(threading.Thread):
    def __init__(self, node: str) -> None:
        super().__init__(name="modelpress-maintenance", daemon=True)
        self.node = node
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = get_settings().worker.heartbeat_s
        stale_after = get_settings().worker.stale_after_s
        # While this worker could not reach the database, no other worker could write its
        # heartbeat either: silence from then says nothing about who is alive. So after a failed
        # heartbeat, jobs are not reaped for stale_after_s, which gives every live worker the
        # same span to beat again (else a 10 s outage re-runs every running job).
        reap_after = 0.0
        while not self.stopped.wait(interval):
            try:
                registry.heartbeat(self.node)
            except Exception:
                log.exception("heartbeat failed")
                reap_after = time.monotonic() + stale_after
                continue
            for step in (
                *([reap_stale_jobs] if time.monotonic() >= reap_after else []),
                reconcile_queued,
                dispatch_held_jobs,
                reconcile_inspections,
                resend_overdue_webhooks,
                sweep_scratch,
                sweep_model_cache,
            ):
                try:
                    step()
                except Exception:  # the database may be briefly away; try next tick
                    log.exception("maintenance step failed")

    def stop(self) -> None:
        self.stopped.set()
