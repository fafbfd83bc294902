"""One job, exactly once: claim the row, supervise the job process, settle the outcome.

Every status change is a call to app/jobs/lifecycle.py in a session of its own. While the job
runs, its supervisor renews the attempt's lease at every poll; a database that is briefly away
is waited out (the job process carries on), not taken for a cancel.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session

from app.db.session import DATABASE_AWAY, Backoff
from app.jobs import lifecycle
from app.jobs import repository as jobs_repository
from app.jobs.artifacts import attempt_keys
from app.jobs.errors import CANCELLED_EXIT_CODE, JobError, TimeLimitExceeded, job_error_from_exit
from app.settings import get_settings
from app.storage import get_storage
from workers import job_run, spare
from workers.job_run import in_transaction, reading

log = logging.getLogger("modelpress.worker")


def claim(job_id: str, owner: str) -> lifecycle.Claim | None:
    """queued -> running under ``owner``; the attempt, or None if the job is not ours to run."""

    return in_transaction(
        f"claiming job {job_id}",
        lambda session: lifecycle.claim(session, job_id=job_id, owner=owner),
    )


def _renew_lease(job_id: str, owner: str) -> bool:
    with job_run.session() as session, session.begin():
        return lifecycle.renew_lease(session, job_id=job_id, owner=owner)


_kill = spare.stop_group


def _supervise(proc: spare.JobProcess, job_id: str, owner: str, time_limit: int) -> str:
    """Wait for the job process; stop it on cancel, takeover or time limit. Returns why it ended."""
    poll_s = get_settings().worker.cancel_poll_s
    deadline = time.monotonic() + time_limit
    backoff = Backoff(first_s=poll_s, most_s=max(poll_s, 5.0))
    next_check = 0.0
    while proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=poll_s)
        if proc.poll() is not None:
            break
        if time.monotonic() > deadline:
            _kill(proc)
            return "time limit"
        if time.monotonic() < next_check:
            continue
        try:
            keep_going = _renew_lease(job_id, owner)
        except DATABASE_AWAY as exc:
            delay = backoff.step()
            next_check = time.monotonic() + delay
            log.warning("job %s: database unreachable (%s); next try in %.1f s", job_id, exc, delay)
            continue
        backoff.reset()
        if not keep_going:
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

    def call(session: Session) -> None:
        if error is None:
            lifecycle.settle_cancelled(session, job_id=job_id, owner=owner)
        else:
            lifecycle.fail(session, job_id=job_id, owner=owner, error=error)

    in_transaction(f"settling job {job_id}", call)


def execute_job(job_id: str, *, node: str | None = None) -> None:
    owner = f"{node or 'local@' + os.uname().nodename}|{os.getpid()}"
    attempt = claim(job_id, owner)
    if attempt is None:
        log.info("job %s is not ours to run (finished, cancelled, or running elsewhere)", job_id)
        return
    settings = get_settings()
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=settings.tmp_dir, prefix=f"job-{job_id}-"))
    proc = spare.start_job_process(job_id, owner, workdir, runs_candidates=attempt.goal)
    try:
        limit = attempt.time_limit_s
        stopped_for = _supervise(proc, job_id, owner, limit)
        _settle(job_id, owner, stopped_for=stopped_for, code=proc.wait(), time_limit=limit)
    finally:
        _kill(proc)  # its group, even after it exited: nothing it started may outlive the job
        shutil.rmtree(workdir, ignore_errors=True)
        drop_attempt_artifacts(job_id, attempt.attempt)
        spare.prepare_next()


def drop_attempt_artifacts(job_id: str, attempt: int) -> None:
    """An attempt that did not win leaves no artifact behind; it touches no other attempt's."""

    def winner(session: Session) -> str | None:
        job = jobs_repository.get(session, job_id)
        return job.artifact_key if job is not None else None

    try:
        kept = reading(f"reading job {job_id}", winner)
    except DATABASE_AWAY:
        log.warning("job %s: attempt %d's artifact is kept: the database is away", job_id, attempt)
        return
    for key in attempt_keys(job_id, attempt):
        if key != kept:
            get_storage().delete(key)
