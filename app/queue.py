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
    _send_inspection(TaskName.INSPECT_MODEL, model_id, what="model")


def enqueue_dataset_inspection(dataset_id: str) -> None:
    _send_inspection(TaskName.INSPECT_DATASET, dataset_id, what="dataset")


def _send_inspection(task: TaskName, row_id: str, *, what: str) -> None:
    try:
        get_celery().send_task(str(task), args=[row_id], queue=str(QueueName.INSPECT))
    except Exception:  # broker down: the row stays pending and is re-sent by the reconciler
        log.exception("could not enqueue the inspection of %s %s; it stays pending", what, row_id)


def enqueue_webhook_delivery(delivery_id: str, *, countdown: float | None = None) -> None:
    """Deliveries ride the inspect queue: short tasks every deployment already consumes.
    ``countdown``: a retry, run no sooner than its back-off."""
    try:
        get_celery().send_task(
            str(TaskName.DELIVER_WEBHOOK),
            args=[delivery_id],
            queue=str(QueueName.INSPECT),
            countdown=countdown,
        )
    except Exception:  # broker down: the delivery stays due and the workers' sweep re-sends it
        log.exception("could not enqueue webhook delivery %s; it stays due", delivery_id)
