"""The Celery app, its task names and its queues: the one module the API and the workers share.

The API only sends job and model ids by task name; the workers register the tasks
(workers/tasks.py). Neither side imports the other.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from celery import Celery
from kombu import Queue

from app.settings import Settings, get_settings


class QueueName(StrEnum):
    CPU = "cpu"
    GPU = "gpu"
    INSPECT = "inspect"


class TaskName(StrEnum):
    RUN_JOB = "modelpress.run_job"
    INSPECT_MODEL = "modelpress.inspect_model"
    INSPECT_DATASET = "modelpress.inspect_dataset"
    DELIVER_WEBHOOK = "modelpress.deliver_webhook"


def broker_priority(priority: int, broker_url: str) -> int:
    """Our 9 is the most urgent, as in AMQP; kombu's Redis transport serves its 0 first."""
    return 9 - priority if broker_url.startswith(("redis://", "rediss://")) else priority


def _transport_options(settings: Settings) -> dict[str, object]:
    if settings.broker_url.startswith("filesystem://"):
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            # kombu polls a folder once a second by default: up to a second of every job's
            # queue wait. A listing of a near-empty folder ten times a second costs nothing.
            "polling_interval": 0.1,
        }
    return {
        "visibility_timeout": settings.broker.visibility_timeout_s,
        # Job priorities (0..9): Redis emulates them with one list per step.
        "queue_order_strategy": "priority",
        "priority_steps": list(range(10)),
        "sep": ":",
        "socket_connect_timeout": 3,
    }


def make_celery(settings: Settings) -> Celery:
    app = Celery("modelpress", broker=settings.broker_url)
    if settings.broker_url.startswith("filesystem://"):
        # Both sides send through it, so it lives beside the app, not in workers/.
        app.conf.broker_transport = "app.filesystem_broker:Transport"
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=tuple(Queue(str(name)) for name in QueueName),
        task_default_queue=str(QueueName.CPU),
        task_ignore_result=True,
        result_backend=None,
        broker_transport_options=_transport_options(settings),
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        # With the broker down, submission must not hang: the row is committed and the
        # reconciler re-sends it later.
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        worker_hijack_root_logger=False,
        # Task events feed Flower (`celery -A workers.celery_app flower`). The filesystem
        # transport has no fanout exchange to carry them, so the embedded setup sends none.
        worker_send_task_events=not settings.broker_url.startswith("filesystem://"),
        task_send_sent_event=not settings.broker_url.startswith("filesystem://"),
        # Per-job limits are enforced by the supervisor (workers/execute.py); this hard
        # limit replaces a stuck process and stays below the Redis visibility timeout.
        task_time_limit=min(
            settings.worker.job_soft_time_limit_s * 2, settings.broker.visibility_timeout_s - 60
        ),
    )
    return app


@lru_cache
def get_celery() -> Celery:
    return make_celery(get_settings())


def queue_names() -> list[str]:
    return [q.name for q in get_celery().conf.task_queues]
