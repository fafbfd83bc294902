"""Jobs start warm (issue 24): each pool process keeps one job process started ahead of its
job, imports loaded and the exporter's first export done (workers/job_process.py's ``spare``).

A job hands its id, owner and workdir to that process on stdin (workers/job_process_spare.py
is its entry). It is still a process of its
own, started by this one with ``start_new_session``, so it leads its own group, carries the
job's memory limit, and is stopped and judged by the supervisor (workers/execute.py) exactly
as a process started for the job would be. The next spare starts once the job has ended, so
its warming never shares the machine with the job's own measurements.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from app.settings import get_settings

log = logging.getLogger("modelpress.worker")
ROOT = Path(__file__).resolve().parent.parent
_PR_SET_NAME = 15
_spare: subprocess.Popen[bytes] | None = None
_spare_env: dict[str, str] = {}  # the environment it started in: its settings come from it


def process_name(job_id: str) -> str:
    """What a job process given its job is called (/proc/PID/comm, ``ps``, ``pgrep``): its
    command line is the spare's, so this is how operators and tests find a job's process."""
    return f"job-{job_id[:10]}"  # the kernel keeps 15 characters


def name_this_process(name: str) -> None:
    """Linux: set this process's name (PR_SET_NAME); elsewhere, nothing."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def start_job_process(job_id: str, owner: str, workdir: Path) -> subprocess.Popen[bytes]:
    """The job's process: the spare, given the job, or (none alive) one started cold."""
    global _spare
    spare, _spare = _spare, None
    if spare is not None and dict(os.environ) != _spare_env:
        stop_group(spare)  # started under other settings (a test's): not this job's process
        spare = None
    if spare is not None and spare.poll() is None and spare.stdin is not None:
        try:
            spare.stdin.write(f"{job_id}\n{owner}\n{workdir}\n".encode())
            spare.stdin.close()
            return spare
        except OSError:  # it died as the job arrived: the job starts cold
            stop_group(spare)
    return subprocess.Popen(
        [sys.executable, "-m", "workers.job_process", job_id, owner, str(workdir)],
        cwd=ROOT,
        start_new_session=True,
    )


def prepare_next() -> None:
    """Start the next job's process now, unless one waits already or warm starts are off."""
    global _spare, _spare_env
    if not get_settings().worker.warm_job_processes:
        return
    if _spare is not None and _spare.poll() is None:
        if dict(os.environ) == _spare_env:
            return
        stop_group(_spare)
    try:
        _spare = subprocess.Popen(
            [sys.executable, "-m", "workers.job_process_spare", str(os.getpid())],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            start_new_session=True,
        )
        _spare_env = dict(os.environ)
    except OSError:
        log.warning("could not start a spare job process; the next job starts cold", exc_info=True)
        _spare = None


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """A job process leads its own process group: its probes and helpers go with it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
