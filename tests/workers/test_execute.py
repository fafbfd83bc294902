"""execute_job in this process, against a migrated database: the real job process compresses
the tiny digits model, or is stopped by its time limit."""

from __future__ import annotations

import os
import signal
import threading
import time
import zipfile
from pathlib import Path

import pytest

from app.db.models import EventLevel, JobPhase, JobStatus
from app.jobs import repository as jobs_repository
from app.jobs.artifacts import attempt_keys
from app.jobs.errors import KilledOutOfMemory
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


def test_a_job_runs_in_the_process_started_ahead_and_a_kill_still_fails_it(
    db: Path, digits_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24's warm start (workers/spare.py): the job is handed to the process started before
    it, which still leads its own group, so killing it fails the job with the reason."""
    from app.settings import get_settings
    from workers import spare

    monkeypatch.setenv("MODELPRESS_WARM_JOB_PROCESSES", "true")
    get_settings.cache_clear()
    spare.prepare_next()
    ahead = spare._spare
    assert ahead is not None and ahead.poll() is None
    job_id = add_job(model_id=digits_model)

    def kill_once_running() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with session() as s:
                job = jobs_repository.get(s, job_id)
                if job is not None and job.phase not in (JobPhase.QUEUED, JobPhase.STARTING):
                    os.killpg(ahead.pid, signal.SIGKILL)  # the job process: it was the spare
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_once_running)
    killer.start()
    execute_job(job_id, node="cpu@test")
    killer.join()
    with session() as s:
        job = jobs_repository.get(s, job_id)
        assert job is not None and job.status == JobStatus.FAILED, job and job.error
        assert job.error == str(KilledOutOfMemory())
    assert ahead.poll() is not None
    # the next job's process is started once this one has ended, and it runs that job
    following = spare._spare
    assert following is not None and following.pid != ahead.pid
    second = add_job(model_id=digits_model)
    execute_job(second, node="cpu@test")
    assert following.poll() is not None
    with session() as s:
        job = jobs_repository.get(s, second)
        assert job is not None and job.status == JobStatus.SUCCEEDED, job and job.error
    if spare._spare is not None:
        spare.stop_group(spare._spare)
