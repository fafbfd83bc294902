"""One job, exactly once: claim the row, supervise the job process, settle the outcome.

Every status change is a call to app/jobs/lifecycle.py in a session of its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.db.models import JobStatus
from app.db.session import get_sessionmaker
from app.jobs import lifecycle
from app.jobs import repository as jobs_repository
from app.jobs.artifacts import all_keys
from app.jobs.errors import CANCELLED_EXIT_CODE, JobError, TimeLimitExceeded, job_error_from_exit
from app.settings import get_settings
from app.storage import get_storage

log = logging.getLogger("modelpress.worker")
ROOT = Path(__file__).resolve().parent.parent


def claim(job_id: str, owner: str) -> int | None:
    """queued -> running under ``owner``; return the job's time limit, or None if not ours."""
    with get_sessionmaker().begin() as session:
        return lifecycle.claim(session, job_id=job_id, owner=owner)


def _should_stop(job_id: str, owner: str) -> bool:
    with get_sessionmaker()() as session:
        return lifecycle.should_stop(session, job_id=job_id, owner=owner)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()


def _supervise(proc: subprocess.Popen[bytes], job_id: str, owner: str, time_limit: int) -> str:
    """Wait for the job process; stop it on cancel or time limit. Returns why it ended."""
    poll_s = get_settings().worker.cancel_poll_s
    deadline = time.monotonic() + time_limit
    while proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=poll_s)
        if proc.poll() is not None:
            break
        if time.monotonic() > deadline:
            _kill(proc)
            return "time limit"
        if _should_stop(job_id, owner):
            _kill(proc)
            return "cancel"
    return "exit"


def _settle(job_id: str, owner: str, *, stopped_for: str, code: int, time_limit: int) -> None:
    """Settle what the job process could not settle itself (killed, crashed, stopped)."""
    error: JobError | None
    if stopped_for == "time limit":
        error = TimeLimitExceeded(time_limit)
    elif stopped_for == "cancel" or code == CANCELLED_EXIT_CODE:
        error = None
    else:
        error = job_error_from_exit(code)
        if error is None:  # it settled the job itself
            return
    with get_sessionmaker().begin() as session:
        if error is None:
            lifecycle.settle_cancelled(session, job_id=job_id, owner=owner)
        else:
            lifecycle.fail(session, job_id=job_id, owner=owner, error=error)


def execute_job(job_id: str, *, node: str | None = None) -> None:
    owner = f"{node or 'local@' + os.uname().nodename}|{os.getpid()}"
    time_limit = claim(job_id, owner)
    if time_limit is None:
        log.info("job %s is not ours to run (finished, cancelled, or running elsewhere)", job_id)
        return
    settings = get_settings()
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=settings.tmp_dir, prefix=f"job-{job_id}-"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.job_process", job_id, owner, str(workdir)], cwd=ROOT
    )
    try:
        stopped_for = _supervise(proc, job_id, owner, time_limit)
        _settle(job_id, owner, stopped_for=stopped_for, code=proc.returncode, time_limit=time_limit)
    finally:
        if proc.poll() is None:
            _kill(proc)
        shutil.rmtree(workdir, ignore_errors=True)
        _drop_artifact_unless_succeeded(job_id)


def _drop_artifact_unless_succeeded(job_id: str) -> None:
    """A cancelled or failed job leaves no partial artifact behind."""
    with get_sessionmaker()() as session:
        job = jobs_repository.get(session, job_id)
        if job is None or job.status in (JobStatus.SUCCEEDED, JobStatus.RUNNING):
            return
    for key in all_keys(job_id):
        get_storage().delete(key)
