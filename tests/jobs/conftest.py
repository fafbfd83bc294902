"""The job-row fixtures of tests/workers: a fresh migrated SQLite database, a ready model."""

from tests.workers.conftest import db, model_id  # noqa: F401
