"""Thin Celery tasks around plain functions that tests can call directly."""

from __future__ import annotations

from workers.celery_app import celery_app
from workers.execute import execute_job


@celery_app.task(name="modelpress.run_job")
def run_job(job_id: str) -> None:
    execute_job(job_id)
