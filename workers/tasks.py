"""Thin Celery tasks around plain functions that tests can call directly."""

from __future__ import annotations

from typing import Any

from celery import signals

from app.broker import QueueName, TaskName
from app.settings import get_settings
from workers import registry, spare
from workers.celery_app import celery_app
from workers.execute import execute_job
from workers.inspect import inspect_model
from workers.inspect_dataset import inspect_dataset
from workers.maintenance import Maintenance
from workers.webhooks import deliver

_maintenance: Maintenance | None = None


@celery_app.task(name=str(TaskName.RUN_JOB), bind=True)
def run_job(self: Any, job_id: str) -> None:
    execute_job(job_id, node=self.request.hostname)


@celery_app.task(name=str(TaskName.INSPECT_MODEL))
def inspect_model_task(model_id: str) -> None:
    inspect_model(model_id)


@celery_app.task(name=str(TaskName.INSPECT_DATASET))
def inspect_dataset_task(dataset_id: str) -> None:
    inspect_dataset(dataset_id)


@celery_app.task(name=str(TaskName.DELIVER_WEBHOOK))
def deliver_webhook_task(delivery_id: str) -> None:
    deliver(delivery_id)


@signals.worker_process_init.connect
def _start_warm(**_kwargs: Any) -> None:
    """A pool process of a worker that runs jobs has its first job's process ready before that
    job arrives (workers/spare.py), not only its later jobs'."""
    try:
        queues = {q.name for q in celery_app.amqp.queues.consume_from.values()}
    except Exception:  # no queue selection to read: the first job starts cold
        return
    if queues & {str(QueueName.CPU), str(QueueName.GPU)}:
        spare.prepare_next()


@signals.worker_ready.connect
def _on_ready(sender: Any, **_kwargs: Any) -> None:
    global _maintenance
    queues = [q.name for q in sender.app.amqp.queues.consume_from.values()]
    name = sender.hostname
    registry.register(
        name=name,
        queues=queues,
        concurrency=int(getattr(sender.controller, "concurrency", 1) or 1),
        threads=get_settings().worker.worker_threads,
    )
    _maintenance = Maintenance(name)
    _maintenance.start()


@signals.worker_shutdown.connect
def _on_shutdown(sender: Any, **_kwargs: Any) -> None:
    if _maintenance is not None:
        _maintenance.stop()
    registry.unregister(sender.hostname)
