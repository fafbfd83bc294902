"""The fork server of one pool process (workers/spare.py): warm once, then fork a job process
per request.

Requests arrive on stdin, one line each: job id, owner, workdir and whether the job runs
candidates (1 or 0), tab-separated. The reply,
on the descriptor that was stdout, is the job process's pid. Each job process is a grandchild:
the server forks a go-between that forks the job process and exits at once, so the job process
is re-parented to the supervisor (a child subreaper, workers/spare.py), which waits for it and
reads its exit status from the kernel like any child's: a kill, an out-of-memory kill and a
clean failure stay told apart. The job process then calls ``setsid``, so it leads its own
process group, and its memory limit is set by ``workers.job_process.main`` as before.

Forking is safe here because the server never opens a database connection or starts a thread
pool of its own: it only imports and warms (torch runs on one thread while it does).
"""

from __future__ import annotations

import os
import sys
import time

from app.settings import get_settings
from compressor.lifeline import die_with_parent
from workers import spare
from workers.spare import name_this_process, process_name

SERVER_NAME = "mp-forkserver"
REPARENT_WAIT_S = 10.0


def _job_process(
    job_id: str, owner: str, workdir: str, go_between: int, replies: int, *, candidates: bool
) -> None:
    """In the forked job process: detach from the server, become a job process, run the job."""
    os.close(replies)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.setsid()
    name_this_process(process_name(job_id))
    # The go-between exits at once; die_with_parent binds to whoever is the parent when it is
    # called, so wait until that is the supervisor.
    deadline = time.monotonic() + REPARENT_WAIT_S
    while os.getppid() == go_between and time.monotonic() < deadline:
        time.sleep(0.001)
    if candidates:
        # A goal job's process runs candidates: their server is forked now, from this warm
        # state, before this process opens a database connection a fork would share.
        fork_server_here()
    from workers import job_process

    code = 1
    try:
        code = job_process.main(job_id, owner, workdir)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _fork(job_id: str, owner: str, workdir: str, replies: int, *, candidates: bool) -> int:
    """Fork the job process through a go-between; its pid once it is the supervisor's child."""
    read_end, write_end = os.pipe()
    go_between = os.fork()
    if go_between == 0:
        os.close(read_end)
        try:
            me = os.getpid()
            pid = os.fork()
            if pid == 0:
                os.close(write_end)
                _job_process(job_id, owner, workdir, me, replies, candidates=candidates)
            os.write(write_end, f"{pid}\n".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as told:
        pid_line = told.readline()
    os.waitpid(go_between, 0)  # once it is reaped, the job process has its new parent
    return int(pid_line or b"0")


def serve(replies: int, *, warmed: bool = False) -> int:
    """Answer requests until the supervisor closes the pipe; ``warmed``: a server forked from a
    warm job process (a goal job's) has nothing left to warm."""
    from workers import job_process

    while True:
        if not warmed:
            warmed = job_process.warm()  # returns early, unwarmed, when a request is waiting
        line = sys.stdin.readline()
        if not line:
            return 0  # the supervisor closed the pipe: it has gone or wants a fresh server
        job_id, owner, workdir, candidates = line.rstrip("\n").split("\t")
        pid = _fork(job_id, owner, workdir, replies, candidates=candidates == "1")
        os.write(replies, f"{pid}\n".encode())


def fork_server_here() -> None:
    """In a warm job process that will run candidates: fork its fork server from this state
    (nothing left to warm), in a session of its own, dying with this process."""
    if not get_settings().worker.warm_job_processes or not spare.become_subreaper():
        return
    parent = os.getpid()
    requests_read, requests_write = os.pipe()
    replies_read, replies_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(requests_write)
            os.close(replies_read)
            os.dup2(requests_read, 0)
            os.close(requests_read)
            os.setsid()
            die_with_parent(parent)
            name_this_process(SERVER_NAME)
            code = serve(replies_write, warmed=True)
        finally:
            os._exit(code)
    os.close(requests_read)
    os.close(replies_write)
    spare.adopt_server(pid, requests_write, replies_read)


def main() -> int:
    die_with_parent(int(sys.argv[1]))  # the pool process that started it
    name_this_process(SERVER_NAME)
    # Replies get a descriptor of their own; stdout becomes stderr, so nothing a job process
    # prints can land in the reply stream.
    replies = os.dup(1)
    os.dup2(2, 1)
    return serve(replies)


if __name__ == "__main__":
    sys.exit(main())
