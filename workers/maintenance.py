"""Housekeeping every worker runs beside its jobs: heartbeat, reaping and re-sending.

Every transition here is conditional, so several workers doing it at once is harmless.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from app.db.models import utcnow
from app.db.session import get_sessionmaker
from app.jobs import lifecycle
from app.models_upload import repository as models_repository
from app.queue import enqueue_inspection
from app.settings import get_settings
from workers import registry

log = logging.getLogger("modelpress.maintenance")


def reap_stale_jobs() -> list[str]:
    """Running jobs whose worker stopped beating are re-queued, or failed after max attempts."""
    with get_sessionmaker().begin() as session:
        return lifecycle.reap_stale(session)


def reconcile_queued() -> list[str]:
    """Re-send jobs queued for a while: the broker may have lost their message (restart)."""
    with get_sessionmaker().begin() as session:
        return lifecycle.resend_stale_queued(session)


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
