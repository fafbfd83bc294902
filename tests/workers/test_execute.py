"""execute_job in this process, against a migrated database: the real job process compresses
the tiny digits model, or is stopped by its time limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


def test_a_job_runs_in_a_forked_process_and_a_kill_still_fails_it(
    db: Path, digits_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24's warm start (workers/spare.py): the job's process is forked by the pool
    process's fork server, named for the job, leads its own group and is this process's child,
    so killing it fails the job with the reason; the server lives on and forks the next one."""
    from app.settings import get_settings
    from workers import spare

    monkeypatch.setenv("MODELPRESS_WARM_JOB_PROCESSES", "true")
    get_settings.cache_clear()
    spare.prepare_next()
    server = spare._server
    assert server is not None and server.poll() is None
    started: list[spare.JobProcess] = []
    real = spare.start_job_process

    def recording(job: str, owner: str, workdir: Path, **kwargs: bool) -> spare.JobProcess:
        started.append(real(job, owner, workdir, **kwargs))
        return started[-1]

    monkeypatch.setattr(spare, "start_job_process", recording)
    job_id = add_job(model_id=digits_model)
    names: list[str] = []

    def kill_once_running() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with session() as s:
                job = jobs_repository.get(s, job_id)
                if started and job is not None and job.phase not in (
                    JobPhase.QUEUED, JobPhase.STARTING,
                ):  # fmt: skip
                    names.append(Path(f"/proc/{started[0].pid}/comm").read_text().strip())
                    os.killpg(started[0].pid, signal.SIGKILL)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_once_running)
    killer.start()
    try:
        execute_job(job_id, node="cpu@test")
        killer.join()
        assert isinstance(started[0], spare.ForkedJobProcess)
        assert names == [spare.process_name(job_id)]
        with session() as s:
            job = jobs_repository.get(s, job_id)
            assert job is not None and job.status == JobStatus.FAILED, job and job.error
            assert job.error == str(KilledOutOfMemory())
        assert started[0].returncode == -signal.SIGKILL
        # the server lives on and forks the next job's process, which runs that job
        assert spare._server is server and server.poll() is None
        second = add_job(model_id=digits_model)
        execute_job(second, node="cpu@test")
        assert isinstance(started[1], spare.ForkedJobProcess)
        assert started[1].returncode == 0 and started[1].pid != started[0].pid
        with session() as s:
            job = jobs_repository.get(s, second)
            assert job is not None and job.status == JobStatus.SUCCEEDED, job and job.error
    finally:
        spare.stop_server()


FORK_SERVER_HERE = """
import sys
from workers import spare
from workers.execute import execute_job
from workers.job_process_forks import fork_server_here
fork_server_here()
server = spare._server
started = []
real = spare.start_job_process
def recording(*args, **kwargs):
    started.append(real(*args, **kwargs))
    return started[-1]
spare.start_job_process = recording
execute_job(sys.argv[1], node="cpu@test")
print(type(server).__name__, type(started[0]).__name__, started[0].returncode, server.poll())
spare.stop_server()
"""


def test_a_goal_jobs_process_forks_its_candidates_from_a_server_of_its_own(
    db: Path, digits_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A goal job's process forks a fork server from its own state before it opens a
    connection (workers/job_process_forks.py's ``fork_server_here``); that server forks the
    candidates' processes, which become that process's children, are waited for and run
    their jobs."""
    from tests.fixtures.stack import ROOT

    monkeypatch.setenv("MODELPRESS_WARM_JOB_PROCESSES", "true")
    job_id = add_job(model_id=digits_model)
    done = subprocess.run(
        [sys.executable, "-c", FORK_SERVER_HERE, job_id], cwd=ROOT, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-4:] == ["ForkedServer", "ForkedJobProcess", "0", "None"]
    with session() as s:
        job = jobs_repository.get(s, job_id)
        assert job is not None and job.status == JobStatus.SUCCEEDED, job and job.error
