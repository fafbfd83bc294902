"""Jobs start warm (issue 24): each pool process keeps a fork server (entry
workers/job_process_forks.py) that has loaded what every job imports and done the exporter's
first export, once, and forks one process per job from that state.

The job process is still a process of its own: it leads its own process group, carries the
job's memory limit, and is stopped and judged by the supervisor (workers/execute.py) exactly
as a process started cold would be. It is re-parented to the supervisor, which is a child
subreaper for that reason, so the supervisor waits for it and reads its exit status from the
kernel. Warming happens once per fork server, not once per job, so it no longer competes
with the jobs that follow for the CPU. With warm starts off, or no server answering, a job
process is started cold.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

from app.settings import get_settings

log = logging.getLogger("modelpress.worker")
ROOT = Path(__file__).resolve().parent.parent
_PR_SET_NAME = 15
_PR_SET_CHILD_SUBREAPER = 36
# A server mid-way through a warming stage answers once that stage ends (seconds at most).
REPLY_WAIT_S = 60.0
_server: subprocess.Popen[bytes] | ForkedServer | None = None
_server_env: dict[str, str] = {}  # the environment it started in: its settings come from it


class JobProcess(Protocol):
    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class ForkedJobProcess:
    """A job process the fork server made, re-parented to this process: ``subprocess.Popen``'s
    poll, wait and returncode (negative: the signal that ended it), read with ``waitpid``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                done, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its status is lost, so say killed
                self.returncode = -signal.SIGKILL
            else:
                if done:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"job process {self.pid}", timeout or 0)
            time.sleep(0.02)
        return code


class ForkedServer(ForkedJobProcess):
    """A goal job's fork server, forked from its warm process (``adopt_server``): the pipes of
    ``subprocess.Popen`` that the supervisor side reads and writes."""

    def __init__(self, pid: int, requests: int, replies: int) -> None:
        super().__init__(pid)
        self.stdin = os.fdopen(requests, "wb")
        self.stdout = os.fdopen(replies, "rb")


def process_name(job_id: str) -> str:
    """What a job process given its job is called (/proc/PID/comm, ``ps``, ``pgrep``): its
    command line is the fork server's, so this is how operators and tests find a job's
    process."""
    return f"job-{job_id[:10]}"  # the kernel keeps 15 characters


def name_this_process(name: str) -> None:
    """Linux: set this process's name (PR_SET_NAME); elsewhere, nothing."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def become_subreaper() -> bool:
    """Linux: orphaned descendants (the forked job processes) become this process's children."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _cold(job_id: str, owner: str, workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "workers.job_process", job_id, owner, str(workdir)],
        cwd=ROOT,
        start_new_session=True,
    )


def _forked(
    server: subprocess.Popen[bytes] | ForkedServer,
    job_id: str,
    owner: str,
    workdir: Path,
    *,
    runs_candidates: bool,
) -> int:
    """Ask ``server`` for a job process; its pid, or 0 when the server did not answer."""
    assert server.stdin is not None and server.stdout is not None
    try:
        server.stdin.write(f"{job_id}\t{owner}\t{workdir}\t{int(runs_candidates)}\n".encode())
        server.stdin.flush()
    except OSError:
        return 0
    ready, _, _ = select.select([server.stdout], [], [], REPLY_WAIT_S)
    if not ready:
        return 0
    line = server.stdout.readline()
    return int(line) if line.strip().isdigit() else 0


def start_job_process(
    job_id: str, owner: str, workdir: Path, *, runs_candidates: bool = False
) -> JobProcess:
    """The job's process: forked by this pool process's server, or (none alive) started cold.
    ``runs_candidates`` (a goal job): the forked process forks a server for its candidates."""
    global _server
    server = _server
    if server is not None and (dict(os.environ) != _server_env or server.poll() is not None):
        stop_server()  # started under other settings (a test's), or gone
        server = None
    if server is not None:
        pid = _forked(server, job_id, owner, workdir, runs_candidates=runs_candidates)
        if pid:
            return ForkedJobProcess(pid)
        log.warning("the fork server did not answer; job %s starts cold", job_id)
        stop_server()
    return _cold(job_id, owner, workdir)


def prepare_next() -> None:
    """Have a fork server warming or warm for the next job, unless warm starts are off."""
    global _server, _server_env
    if not get_settings().worker.warm_job_processes:
        return
    if _server is not None and _server.poll() is None:
        if dict(os.environ) == _server_env:
            return
        stop_server()
    if not become_subreaper():
        return  # its job processes could not be waited for: jobs start cold
    try:
        _server = subprocess.Popen(
            [sys.executable, "-m", "workers.job_process_forks", str(os.getpid())],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        _server_env = dict(os.environ)
    except OSError:
        log.warning("could not start a fork server; jobs start cold", exc_info=True)
        _server = None


def adopt_server(pid: int, requests: int, replies: int) -> None:
    """Take a server forked from this process (a goal job's: workers/job_process_forks.py's
    ``fork_server_here``) as the one its candidates' processes come from."""
    global _server, _server_env
    _server = ForkedServer(pid, requests, replies)
    _server_env = dict(os.environ)


def stop_server() -> None:
    global _server
    server, _server = _server, None
    if server is not None:
        stop_group(server)


def stop_group(proc: JobProcess) -> None:
    """A job process leads its own process group: its probes and helpers go with it. Those
    orphaned by its death were re-parented here (a subreaper): they are reaped too."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with contextlib.suppress(ChildProcessError):
        while True:  # each was sent SIGKILL above: the wait is short
            os.waitpid(-proc.pid, 0)
