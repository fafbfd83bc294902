"""Load held, nothing lost (issue 12): 200 submissions from 20 concurrent clients on PostgreSQL +
Redis with two workers, one worker SIGKILLed mid-job and Redis restarted during the run.

Correctness only; bench/load.py measures the same load's speed for docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench.load import JOBS, submit_concurrently
from tests.faults.test_faults import FAST, _PrivateRedis
from tests.fixtures.helpers import digits_upload, upload_ready, wait_until
from tests.fixtures.stack import Stack, free_port, running_stack, unavailable
from workers.maintenance import SCRATCH_GRACE_S

pytestmark = pytest.mark.e2e

FINISHED = ("succeeded", "failed", "cancelled")
# A real job costs a 2-core machine several CPU-seconds (its process imports the engine), so
# 200 would not fit a CI run: the clients cancel all but every tenth at once, the races of
# cancel against claim included. All 200 still pass through the API, the broker and a worker.
KEEP_EVERY = 10
# The events lifecycle.py writes when a job settles; a failure's event is its error message.
TERMINAL_EVENT = sa.text(
    "SELECT job_id, count(*) FROM job_events WHERE level = 'error' OR message IN "
    "('job succeeded', 'job failed', 'job cancelled', 'cancelled while queued') GROUP BY job_id"
)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[_PrivateRedis]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed (.ci/run installs it)")
    server = _PrivateRedis(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def query(stack: Stack, statement: str | sa.TextClause, **params: object) -> list[sa.Row]:
    engine = sa.create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            text = sa.text(statement) if isinstance(statement, str) else statement
            return list(conn.execute(text, params))
    finally:
        engine.dispose()


def running_on(stack: Stack, worker: str) -> bool:
    """A job runs under the named worker process (its celery hostname ends in its pid)."""
    pid = stack.procs[worker].pid
    owned = "SELECT count(*) FROM jobs WHERE status = 'running' AND worker LIKE :owner"
    return bool(query(stack, owned, owner=f"%-{pid}|%")[0][0])


def processes_of(data_dir: Path) -> dict[int, str]:
    """Live processes of this deployment: its data dir is in their environment or command."""
    needle = str(data_dir).encode()
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError):
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (proc / "cmdline").read_bytes()
            if state != "Z" and (needle in command or needle in (proc / "environ").read_bytes()):
                found[int(proc.name)] = command.replace(b"\0", b" ").decode()
    return found


def job_processes(data_dir: Path) -> dict[int, str]:
    """Job processes and their probes; a fork server (workers/spare.py) holds no job, and is
    not one (the job processes it forks carry its command line, named for their job)."""
    return {
        pid: command
        for pid, command in processes_of(data_dir).items()
        if ("workers.job_process" in command or "compressor.measure" in command)
        and not ("workers.job_process_forks" in command and not _named_for_a_job(pid))
    }


def _named_for_a_job(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().startswith("job-")
    return False


SWEPT_WITHIN_S = SCRATCH_GRACE_S + 15  # a few maintenance ticks (heartbeat_s is 1 here)


def scratch_of(data_dir: Path) -> dict[str, float]:
    """The job scratch folders left under the stack's tmp, by their age in seconds."""
    scratch = data_dir / "tmp"
    now = time.time()
    if not scratch.is_dir():
        return {}
    return {p.name: round(now - p.stat().st_mtime) for p in scratch.iterdir()}


def eventually_empty(probe: Callable[[], dict[Any, Any]], seconds: float = 10) -> dict[Any, Any]:
    """What ``probe`` still finds after ``seconds``: exits take a moment on a busy machine."""
    deadline = time.monotonic() + seconds
    while (found := probe()) and time.monotonic() < deadline:
        time.sleep(0.3)
    return found


def unfinished(stack: Stack) -> int:
    statuses = ", ".join(f"'{s}'" for s in FINISHED)
    return int(query(stack, f"SELECT count(*) FROM jobs WHERE status NOT IN ({statuses})")[0][0])


class TestLoadWithFaults:
    def test_every_job_ends_once_with_its_artifact(
        self, tmp_path: Path, private_redis: _PrivateRedis
    ) -> None:
        with running_stack("scaleout", tmp_path, broker_url=private_redis.url, **FAST) as stack:
            stack.start_worker("worker2")
            with stack.client() as client:
                model_id = upload_ready(client, digits_upload(tmp_path / "mlp"))["id"]
                with ThreadPoolExecutor(1) as background:
                    load = background.submit(
                        submit_concurrently, stack, model_id, keep_every=KEEP_EVERY
                    )
                    wait_until(lambda: running_on(stack, "worker"), 120, "a job on 'worker'")
                    stack.kill("worker")
                    stack.start_worker("worker3")  # as an orchestrator would replace it
                    private_redis.stop()  # keeps nothing on disk: queued messages are lost
                    time.sleep(2)
                    private_redis.start()
                    submitted = load.result()
                assert len(set(submitted.job_ids)) == JOBS
                wait_until(
                    lambda: unfinished(stack) == 0, 600, f"all jobs to finish\n{stack.logs()}"
                )

                jobs = {
                    row.id: row
                    for row in query(
                        stack, "SELECT id, status, error, artifact_bytes, artifact_sha256 FROM jobs"
                    )
                }
                assert sorted(jobs) == sorted(submitted.job_ids)
                failed = {i: j.error for i, j in jobs.items() if j.status == "failed"}
                assert failed == {}, failed
                succeeded = {i: j for i, j in jobs.items() if j.status == "succeeded"}
                assert len(succeeded) >= JOBS // KEEP_EVERY, len(succeeded)
                terminal_events = dict(query(stack, TERMINAL_EVENT))
                twice = {i: n for i, n in terminal_events.items() if n != 1}
                assert twice == {} and sorted(terminal_events) == sorted(jobs), terminal_events
                for job_id, job in succeeded.items():
                    download = client.get(f"/v1/jobs/{job_id}/artifact")
                    assert download.status_code == 200, (job_id, download.text)
                    assert len(download.content) == job.artifact_bytes, job_id
                    assert hashlib.sha256(download.content).hexdigest() == job.artifact_sha256

                assert eventually_empty(lambda: job_processes(stack.data_dir)) == {}
                # The killed worker never reached its own cleanup: its job's scratch goes with
                # the sweep, once the folder is older than the grace a claim may take.
                assert eventually_empty(lambda: scratch_of(stack.data_dir), SWEPT_WITHIN_S) == {}
        assert eventually_empty(lambda: processes_of(stack.data_dir)) == {}
