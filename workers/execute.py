"""One job, exactly once: claim the row, supervise the job process, settle the outcome."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.db.models import JobStatus, utcnow
from app.db.session import get_sessionmaker
from app.jobs import repository as jobs_repository
from app.jobs.artifacts import all_keys
from app.pools.repository import is_live
from app.settings import get_settings
from app.storage import get_storage
from workers.maintenance import owner_node

log = logging.getLogger("modelpress.worker")
ROOT = Path(__file__).resolve().parent.parent


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _may_reclaim(owner: str | None, node: str) -> bool:
    """A message for a job already running is a duplicate unless its runner is gone."""
    their_node, _, pid = (owner or "").partition("|")
    if their_node == node:
        return not (pid.isdigit() and _pid_alive(int(pid)))
    with get_sessionmaker()() as session:
        return not is_live(session, their_node, stale_after_s=get_settings().worker.stale_after_s)


def claim(job_id: str, owner: str) -> int | None:
    """queued -> running under ``owner``; return the job's time limit, or None if not ours."""
    settings = get_settings().worker
    with get_sessionmaker().begin() as session:
        job = jobs_repository.get(session, job_id)
        if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return None
        previous = job.worker if job.status == JobStatus.RUNNING else None
        if job.status == JobStatus.RUNNING and not _may_reclaim(previous, owner_node(owner)):
            return None
        if job.attempts >= settings.max_attempts:
            if jobs_repository.transition(
                session,
                job_id,
                from_=[job.status],
                owner=previous,
                status=JobStatus.FAILED,
                phase="failed",
                finished_at=utcnow(),
                error=f"the job was interrupted {job.attempts} times; giving up",
            ):
                jobs_repository.add_event(session, job_id, "attempts exhausted", "error")
            return None
        if not jobs_repository.transition(
            session,
            job_id,
            from_=[job.status],
            owner=previous,
            status=JobStatus.RUNNING,
            worker=owner,
            phase="starting",
            progress=0.0,
            started_at=utcnow(),
            attempts=job.attempts + 1,
        ):
            return None
        jobs_repository.add_event(
            session, job_id, f"attempt {job.attempts + 1} started on {owner_node(owner)}"
        )
        return job.time_limit_s or settings.job_soft_time_limit_s


def _settle(job_id: str, owner: str, **values: object) -> bool:
    with get_sessionmaker().begin() as session:
        done = jobs_repository.transition(
            session, job_id, from_=[JobStatus.RUNNING], owner=owner, finished_at=utcnow(), **values
        )
        if done:
            message = str(values.get("error") or values.get("status"))
            jobs_repository.add_event(session, job_id, message, "warning")
        return done


def _should_stop(job_id: str, owner: str) -> bool:
    with get_sessionmaker()() as session:
        job = jobs_repository.get(session, job_id)
        return job is None or job.cancel_requested or job.worker != owner


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


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
    deadline = time.monotonic() + time_limit
    stopped_for: str | None = None
    try:
        while proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=settings.worker.cancel_poll_s)
            if proc.poll() is not None:
                break
            if time.monotonic() > deadline:
                stopped_for = "time limit"
                _kill(proc)
            elif _should_stop(job_id, owner):
                stopped_for = "cancel"
                _kill(proc)
        code = proc.returncode
        if stopped_for == "time limit":
            _settle(
                job_id,
                owner,
                status=JobStatus.FAILED,
                phase="failed",
                error=f"the job exceeded its time limit of {time_limit} s and was stopped",
            )
        elif stopped_for == "cancel" or code == 3:
            _settle(job_id, owner, status=JobStatus.CANCELLED, phase="cancelled")
        elif code == -signal.SIGKILL:
            _settle(
                job_id,
                owner,
                status=JobStatus.FAILED,
                phase="failed",
                error="the job process was killed (SIGKILL), most likely because the machine "
                "ran out of memory; try a smaller model or batch, or a worker with more memory",
            )
        elif code != 0:
            _settle(
                job_id,
                owner,
                status=JobStatus.FAILED,
                phase="failed",
                error=f"the job process crashed (exit code {code}); the worker logs have details",
            )
    finally:
        if proc.poll() is None:
            _kill(proc)
        shutil.rmtree(workdir, ignore_errors=True)
        _drop_artifact_unless_succeeded(job_id)


def _drop_artifact_unless_succeeded(job_id: str) -> None:
    """A cancelled or failed job leaves no partial artifact behind."""
    with get_sessionmaker()() as session:
        job = jobs_repository.get(session, job_id)
        if job is None or job.status == JobStatus.SUCCEEDED or job.status == JobStatus.RUNNING:
            return
    for key in all_keys(job_id):
        get_storage().delete(key)
