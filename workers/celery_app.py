"""The worker's entry point: ``celery -A workers.celery_app:celery_app worker``.

The app itself is app/broker.py, shared with the API; only the worker loads the tasks.
"""

from __future__ import annotations

from app.broker import get_celery

celery_app = get_celery()
celery_app.conf.include = ["workers.tasks"]
