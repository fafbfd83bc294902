"""execute_job in this process, against a migrated database: the real job process compresses
the tiny digits model, or is stopped by its time limit."""

from __future__ import annotations

import zipfile
from pathlib import Path

from app.db.models import EventLevel, JobPhase, JobStatus
from app.jobs import repository as jobs_repository
from app.jobs.artifacts import attempt_keys
from app.storage import get_storage
from tests.workers.conftest import add_job, session
from workers.execute import execute_job


def test_execute_job_compresses_and_settles_once(db: Path, digits_model: str) -> None:
    job_id = add_job(model_id=digits_model)
    execute_job(job_id, node="cpu@test")
    with session() as s:
        job = jobs_repository.get(s, job_id)
        assert job is not None
        assert (job.status, job.phase, job.error) == (JobStatus.SUCCEEDED, JobPhase.DONE, None)
        assert job.attempts == 1 and job.progress == 1.0
        assert job.report is not None and job.report["artifact"]["bytes"] == job.artifact_bytes
        messages = [(e.level, e.message) for e in jobs_repository.events(s, job_id)]
        key = job.artifact_key
    assert key is not None and get_storage().exists(key)
    local = db / "artifact"
    get_storage().fetch_to(key, local)
    assert local.stat().st_size == job.artifact_bytes
    if zipfile.is_zipfile(local):
        assert zipfile.ZipFile(local).namelist()
    assert messages[0] == (EventLevel.INFO, "attempt 1 started on cpu@test")
    assert messages[-1] == (EventLevel.INFO, "job succeeded")
    assert (EventLevel.INFO, JobPhase.FETCHING_MODEL) in messages
    # A second delivery of the same message does nothing.
    execute_job(job_id, node="cpu@test")
    with session() as s:
        again = jobs_repository.get(s, job_id)
        assert again is not None and again.attempts == 1
        assert len(jobs_repository.events(s, job_id)) == len(messages)


def test_time_limit_stops_the_job_process(db: Path, digits_model: str) -> None:
    job_id = add_job(model_id=digits_model, time_limit_s=1)
    execute_job(job_id, node="cpu@test")
    with session() as s:
        job = jobs_repository.get(s, job_id)
        assert job is not None
        assert job.status == JobStatus.FAILED
        assert job.error == "the job exceeded its time limit of 1 s and was stopped"
    assert not any(get_storage().exists(k) for k in attempt_keys(job_id, 1))
