"""Sending job ids to the broker. The job row is the truth; the message is only a nudge."""

from __future__ import annotations

import logging

from app.settings import get_settings

log = logging.getLogger("modelpress.queue")

RUN_JOB_TASK = "modelpress.run_job"
INSPECT_MODEL_TASK = "modelpress.inspect_model"
INSPECT_QUEUE = "inspect"


def broker_priority(priority: int, broker_url: str) -> int:
    """Our 9 is the most urgent, as in AMQP; kombu's Redis transport serves its 0 first."""
    return 9 - priority if broker_url.startswith(("redis://", "rediss://")) else priority


def enqueue_job(job_id: str, *, queue: str, priority: int = 5) -> None:
    from workers.celery_app import celery_app

    try:
        celery_app.send_task(
            RUN_JOB_TASK,
            args=[job_id],
            queue=queue,
            priority=broker_priority(priority, get_settings().broker_url),
        )
    except Exception:  # broker down: the row stays queued and is re-sent by the reconciler
        log.exception("could not enqueue job %s; it stays queued", job_id)


def enqueue_inspection(model_id: str) -> None:
    from workers.celery_app import celery_app

    try:
        celery_app.send_task(INSPECT_MODEL_TASK, args=[model_id], queue=INSPECT_QUEUE)
    except Exception:  # broker down: the row stays pending and is re-sent by the reconciler
        log.exception("could not enqueue the inspection of model %s; it stays pending", model_id)
