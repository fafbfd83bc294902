"""Sending job ids to the broker. The job row is the truth; the message is only a nudge."""

from __future__ import annotations

import logging

from app.broker import QueueName, TaskName, broker_priority, get_celery
from app.settings import get_settings

log = logging.getLogger("modelpress.queue")


def enqueue_job(job_id: str, *, queue: str, priority: int = 5) -> None:
    try:
        get_celery().send_task(
            str(TaskName.RUN_JOB),
            args=[job_id],
            queue=queue,
            priority=broker_priority(priority, get_settings().broker_url),
        )
    except Exception:  # broker down: the row stays queued and is re-sent by the reconciler
        log.exception("could not enqueue job %s; it stays queued", job_id)


def enqueue_inspection(model_id: str) -> None:
    try:
        get_celery().send_task(
            str(TaskName.INSPECT_MODEL), args=[model_id], queue=str(QueueName.INSPECT)
        )
    except Exception:  # broker down: the row stays pending and is re-sent by the reconciler
        log.exception("could not enqueue the inspection of model %s; it stays pending", model_id)
